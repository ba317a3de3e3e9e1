// The runner through real deliveries: timeouts, RetryLater, chaining and result expiry, with
// test-only task types served by the Node entry and delivered by the stack's broker.
import { Redis } from "@upstash/redis";
import * as v from "valibot";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RetryLater } from "../src/errors.ts";
import { serveNode } from "../src/node.ts";
import { defineTask, type TaskDefinition } from "../src/task.ts";
import { tasks as builtIn } from "../tasks/index.ts";
import { call, keyPrefix, settle, stack } from "./helpers/api.ts";

const tag = Math.random().toString(36).slice(2, 8);
const slow = defineTask({
  name: `slow-${tag}`,
  input: v.object({}),
  timeout: 1,
  retries: 1,
  async run(_, ctx) {
    await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
    await new Promise((resolve) => setTimeout(resolve, 5_000)); // ignores the abort: still cut off
    return "never";
  },
});
const later = defineTask({
  name: `later-${tag}`,
  input: v.object({}),
  async run(_, ctx) {
    if (ctx.attempt === 1) throw new RetryLater({ after: 20, message: "provider asked for 20 s" });
    return { attempt: ctx.attempt };
  },
});
const parent = defineTask({
  name: `parent-${tag}`,
  input: v.object({ n: v.number() }),
  resultTtl: 120,
  async run({ n }, ctx) {
    // Enqueues its follow-up, then fails once: the retry must not enqueue a second one.
    const child = await ctx.enqueue(childTask, { n: n + 1 });
    childIds.add(child.id);
    if (ctx.attempt === 1) throw new Error("fails after enqueueing");
    return { child: child.id };
  },
});
const childIds = new Set<string>();
let childRuns = 0;
let oddRuns = 0;
const odd = defineTask({
  name: `odd-${tag}`,
  input: v.object({}),
  async run() {
    oddRuns++;
    return { big: BigInt(1) }; // JSON cannot hold a BigInt
  },
});
let inFlight = 0;
let peak = 0;
const serial = defineTask({
  name: `serial-${tag}`,
  input: v.object({}),
  flowControl: { parallelism: 1 },
  async run() {
    peak = Math.max(peak, ++inFlight);
    await new Promise((resolve) => setTimeout(resolve, 150));
    inFlight--;
    return null;
  },
});
const childTask = defineTask({
  name: `child-${tag}`,
  input: v.object({ n: v.number() }),
  run: async ({ n }) => (childRuns++, { n }),
});

let app: { url: string; close: () => Promise<void> };
beforeAll(async () => {
  const env = { ...stack().env };
  app = await serveNode({ port: 0, tasks: [...builtIn, slow, later, parent, childTask, serial, odd] as TaskDefinition[], env: () => env });
  env.CELERIAC_PUBLIC_URL = app.url;
});
afterAll(() => app?.close());
const api = (method: string, path: string, body?: unknown) => call(method, path, body, { base: app.url });

describe("runner", () => {
  it("aborts a run at its timeout and counts it as a retryable failure", async () => {
    const r = await api("POST", `/v1/tasks/slow-${tag}`, { payload: {} });
    const done = await settle(r.body.id, ["failed"], app.url);
    expect(done.attempts).toBe(2);
    expect(done.error).toMatchObject({ code: "timeout", retryable: true });
    expect(done.history.filter((h: any) => h.state === "retrying")[0].error.code).toBe("timeout");
  });

  it("honours RetryLater: retrying with the asked time, then runs again", async () => {
    const r = await api("POST", `/v1/tasks/later-${tag}`, { payload: {} });
    const done = await settle(r.body.id, ["succeeded"], app.url);
    expect(done.result).toEqual({ attempt: 2 });
    const [running2, retrying] = done.history.filter((h: any) => h.state === "running" || h.state === "retrying");
    expect(retrying.error).toMatchObject({ code: "retry_later", retryable: true });
    // The broker waited the asked 20 s, scaled by its time scale.
    expect(Date.parse(running2.at) - Date.parse(retrying.at)).toBeGreaterThanOrEqual(20_000 * stack().timeScale * 0.9);
  });

  it("fails at once, without running again, when a result is not JSON", async () => {
    const r = await api("POST", `/v1/tasks/odd-${tag}`, { payload: {} });
    const done = await settle(r.body.id, ["failed"], app.url);
    expect(done).toMatchObject({ attempts: 1, error: { code: "result_not_json", retryable: false } });
    expect(oddRuns).toBe(1);
  });

  it("passes a task's flow control to QStash: never more than `parallelism` runs at once", async () => {
    const ids = (
      await api("POST", "/v1/tasks", { tasks: Array.from({ length: 4 }, () => ({ task: `serial-${tag}`, payload: {} })) })
    ).body.tasks.map((t: any) => t.id);
    for (const id of ids) expect((await settle(id, ["succeeded"], app.url)).state).toBe("succeeded");
    expect(peak).toBe(1);
  });

  it("chains a follow-up once, though the parent retries, and expires results after resultTtl", async () => {
    const r = await api("POST", `/v1/tasks/parent-${tag}`, { payload: { n: 1 } });
    const done = await settle(r.body.id, ["succeeded"], app.url);
    expect(done.attempts).toBe(2);
    expect(childIds.size).toBe(1);
    expect([...childIds][0]).toBe(done.result.child);
    const followUp = await settle(done.result.child, ["succeeded"], app.url);
    expect(followUp).toMatchObject({ task: `child-${tag}`, result: { n: 2 }, attempts: 1 });
    expect(childRuns).toBe(1);
    const redis = new Redis({ url: stack().env.UPSTASH_REDIS_REST_URL!, token: stack().env.UPSTASH_REDIS_REST_TOKEN! });
    const ttl = await redis.ttl(`${keyPrefix()}t:${r.body.id}`);
    expect(ttl).toBeGreaterThan(100);
    expect(ttl).toBeLessThanOrEqual(120);
  });
});
