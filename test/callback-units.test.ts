// The callback option and event as pure functions: what the option accepts, which URLs it
// refuses, and what the caller receives.
import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { CALLBACK_EVENTS, CallbackOption, callbackIssues } from "../src/callback-option.ts";
import { callbackBody, webhookIdOf } from "../src/callbacks.ts";
import type { TaskRecord } from "../src/store/record.ts";

const rec = (over: Partial<TaskRecord> = {}): TaskRecord => ({
  id: "tsk_0000000000aaaaaaaaaaaaaaaa",
  task: "webhook",
  state: "succeeded",
  attempts: 1,
  payload: {},
  options: { retries: 5, timeout: 30, resultTtl: 60 },
  createdAt: "2026-11-29T12:00:00.000Z",
  runAt: "2026-11-29T12:00:00.000Z",
  finishedAt: "2026-11-29T12:00:01.000Z",
  history: [],
  ...over,
});

describe("the callback option", () => {
  it("takes a URL (every event) or {url, events}", () => {
    expect(v.parse(CallbackOption, "https://a.example/h")).toEqual({ url: "https://a.example/h", events: [...CALLBACK_EVENTS] });
    expect(v.parse(CallbackOption, { url: "https://a.example/h", events: ["task.failed"] })).toEqual({
      url: "https://a.example/h",
      events: ["task.failed"],
    });
    expect(v.parse(CallbackOption, { url: "https://a.example/h", events: ["task.failed", "task.failed"] }).events).toEqual(["task.failed"]);
    for (const bad of [
      { url: "https://a.example/h", events: [] },
      { url: "https://a.example/h", events: ["task.exploded"] },
      { url: 1 },
      7,
      { url: "https://a.example/h", extra: 1 },
    ]) {
      expect(v.safeParse(CallbackOption, bad).success, JSON.stringify(bad)).toBe(false);
    }
  });

  it("refuses URLs that are not http(s), private, too long or with credentials, unless allow-listed", () => {
    const issues = (url: string, allow: string[] = []) => callbackIssues({ url, events: ["task.failed"] }, allow, "callback");
    expect(issues("https://hooks.example.com/x")).toEqual([]);
    for (const url of [
      "ftp://hooks.example.com/x",
      "http://10.1.2.3/x",
      "http://[::1]/x",
      "https://u:p@hooks.example.com/x",
      `https://hooks.example.com/${"a".repeat(2100)}`,
      "nope",
    ]) {
      const found = issues(url);
      expect(found, url).toHaveLength(1);
      expect(found[0]!.path).toBe("callback");
    }
    expect(issues("http://127.0.0.1:8080/x", ["127.0.0.1"])).toEqual([]);
  });
});

describe("the event", () => {
  it("carries the result of a success, the error of a failure, and when it happened", () => {
    expect(callbackBody("task.succeeded", rec({ result: { ok: 1 } }))).toEqual({
      type: "task.succeeded",
      id: rec().id,
      task: "webhook",
      state: "succeeded",
      attempts: 1,
      result: { ok: 1 },
      at: "2026-11-29T12:00:01.000Z",
    });
    const error = { code: "http_400", message: "answered 400", retryable: false };
    expect(callbackBody("task.failed", rec({ state: "failed", error }))).toMatchObject({ type: "task.failed", error });
    const delivery = { status: "bounced" as const, at: "2026-11-29T12:00:05.000Z", history: [] };
    expect(callbackBody("email.bounced", rec({ delivery })).at).toBe(delivery.at);
  });

  it("leaves a result too large to travel on the task", () => {
    const body = callbackBody("task.succeeded", rec({ result: { big: "x".repeat(70_000) } }));
    expect(body.result).toBeUndefined();
    expect(body.resultOmitted).toBe(true);
  });

  it("names each event of each generation once: <task id>.<event>[.g<n>]", () => {
    expect(webhookIdOf(rec(), "task.succeeded")).toBe(`${rec().id}.task.succeeded`);
    expect(webhookIdOf(rec({ generation: 2 }), "task.failed")).toBe(`${rec().id}.task.failed.g2`);
  });
});
