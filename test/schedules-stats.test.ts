// Schedules declared in code and the daily statistics, through an app served by the Node entry
// with test-only task types, against its own broker (so its sync owns that broker's schedules)
// and the shared Redis bridge and mail sink.
import { Client } from "@upstash/qstash";
import * as v from "valibot";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Broker, startBroker } from "../dev/broker/index.ts";
import { DEV_API_KEY } from "../dev/stack.ts";
import { createApp } from "../src/app.ts";
import { PermanentError } from "../src/errors.ts";
import { serveNode } from "../src/node.ts";
import { utcDay } from "../src/store/index.ts";
import { defineTask, type TaskDefinition } from "../src/task.ts";
import { tasks as builtIn } from "../tasks/index.ts";
import { call, mailbox, settle, stack, until } from "./helpers/api.ts";

const tag = Math.random().toString(36).slice(2, 8);
const probe = (schedules: { name: string; cron: string; timezone?: string; payload?: unknown }[]) =>
  defineTask({
    name: `probe-${tag}`,
    input: v.object({ n: v.number() }),
    schedules,
    async run({ n }) {
      return { n };
    },
  });
const EVERY_MINUTE = { name: "every-minute", cron: "* * * * *", payload: { n: 1 } };
const NIGHTLY = { name: "nightly", cron: "0 3 * * *", timezone: "Europe/Berlin", payload: { n: 2 } };

/** Succeeds, fails for good, or fails once then succeeds, as its payload says. */
const counted = defineTask({
  name: `counted-${tag}`,
  input: v.object({ mode: v.picklist(["ok", "fail", "flaky"]) }),
  retries: 2,
  async run({ mode }, ctx) {
    if (mode === "fail") throw new PermanentError("told to fail");
    if (mode === "flaky" && ctx.attempt === 1) throw new Error("first attempt fails");
    return { mode };
  },
});

let broker: Broker;
let app: { url: string; close: () => Promise<void> };
let env: Record<string, string>;
const tasks = [...builtIn, probe([EVERY_MINUTE, NIGHTLY]), counted] as TaskDefinition[];
const api = (method: string, path: string, body?: unknown) => call(method, path, body, { base: app.url });

beforeAll(async () => {
  broker = await startBroker({ port: 0, timeScale: stack().timeScale });
  env = { ...stack().env, QSTASH_URL: broker.url, CELERIAC_STATS_EMAIL: `stats-${tag}@celeriac.dev` };
  app = await serveNode({ port: 0, tasks, env: () => env });
  env.CELERIAC_PUBLIC_URL = app.url;
});
afterAll(async () => {
  await app?.close();
  await broker?.close();
});

describe("schedules", () => {
  const id = (name: string) => `celeriac-probe-${tag}-${name}`;
  const qstash = () => new Client({ baseUrl: broker.url, token: broker.token });

  it("sync creates the declared schedules, leaves others alone, and is a no-op the second time", async () => {
    await qstash().schedules.create({ destination: "http://127.0.0.1:1/elsewhere", cron: "0 0 * * *", scheduleId: "someone-elses" });
    const first = await api("POST", "/v1/schedules/sync");
    expect(first.status).toBe(200);
    expect(first.body.created.sort()).toEqual([id("every-minute"), id("nightly"), "celeriac-daily-stats-daily"].sort());
    expect(first.body).toMatchObject({ updated: [], deleted: [], foreign: ["someone-elses"] });

    const live = await qstash().schedules.get(id("nightly"));
    expect(live.cron).toBe("CRON_TZ=Europe/Berlin 0 3 * * *");
    expect(live.destination).toBe(`${app.url}/qstash/deliver`);

    const second = await api("POST", "/v1/schedules/sync");
    expect(second.body).toMatchObject({ created: [], updated: [], deleted: [] });
    expect(second.body.unchanged).toHaveLength(3);
  });

  it("reports declared vs. live, and pauses and resumes one schedule", async () => {
    const status = await api("GET", "/v1/schedules");
    const nightly = status.body.schedules.find((s: any) => s.id === id("nightly"));
    expect(nightly).toMatchObject({ cron: "0 3 * * *", timezone: "Europe/Berlin", drift: [], live: { paused: false } });
    expect(Date.parse(nightly.live.nextRun)).toBeGreaterThan(0);

    expect((await api("POST", `/v1/schedules/${id("nightly")}/pause`)).body).toEqual({ id: id("nightly"), paused: true });
    expect((await qstash().schedules.get(id("nightly"))).isPaused).toBe(true);
    expect((await api("POST", `/v1/schedules/${id("nightly")}/resume`)).body).toEqual({ id: id("nightly"), paused: false });
    expect((await api("POST", "/v1/schedules/someone-elses/pause")).status).toBe(404);
  });

  it("a minute cron fires and each run is a normal task record with its schedule id", async () => {
    // The broker's cron clock runs 1/timeScale times faster: a minute passes in 3 s.
    const run = await until(
      "a scheduled run",
      async () => {
        const list = await api("GET", `/v1/tasks?task=probe-${tag}&state=succeeded`);
        return list.body.tasks.find((t: any) => t.scheduleId === id("every-minute"));
      },
      30_000,
    );
    expect(run).toMatchObject({ state: "succeeded", attempts: 1, payload: { n: 1 }, result: { n: 1 } });
  });

  it("removing a declaration deletes only that schedule", async () => {
    const fewer = createApp({ tasks: [...builtIn, probe([EVERY_MINUTE]), counted] as TaskDefinition[] });
    const r = await fewer.request("/v1/schedules/sync", { method: "POST", headers: { authorization: `Bearer ${DEV_API_KEY}` } }, env);
    expect(await r.json()).toMatchObject({ created: [], updated: [], deleted: [id("nightly")], foreign: ["someone-elses"] });
    const ids = (await qstash().schedules.list()).map((s) => s.scheduleId).sort();
    expect(ids).toEqual([id("every-minute"), "celeriac-daily-stats-daily", "someone-elses"].sort());
  });

  it("refuses a bad declaration when the app loads, naming the task", () => {
    expect(() => probe([{ name: "bad", cron: "61 * * * *", payload: { n: 1 } }])).toThrow(/probe-.*"bad".*minute/);
    expect(() => probe([{ name: "tz", cron: "0 * * * *", timezone: "Mars/Olympus", payload: { n: 1 } }])).toThrow(/time zone/);
    expect(() => probe([{ name: "payload", cron: "0 * * * *", payload: { n: "one" } }])).toThrow(/payload/);
  });
});

describe("daily statistics", () => {
  it("counts what ran today, and the daily report equals it", async () => {
    const modes = ["ok", "ok", "ok", "fail", "fail", "flaky"] as const;
    const ids = [];
    for (const mode of modes) ids.push((await api("POST", `/v1/tasks/counted-${tag}`, { payload: { mode } })).body.id);
    const cancelled = await api("POST", `/v1/tasks/counted-${tag}`, { payload: { mode: "ok" }, delay: "1h" });
    expect((await api("DELETE", `/v1/tasks/${cancelled.body.id}`)).status).toBe(200);
    for (const id of ids) await settle(id, undefined, app.url);

    const expected = { enqueued: 7, attempts: 7, succeeded: 4, failed: 2, cancelled: 1, retries: 1 };
    const live = await api("GET", "/v1/stats");
    expect(live.body.tasks[`counted-${tag}`]).toMatchObject(expected);
    expect(live.body.tasks[`counted-${tag}`].p50Ms).toEqual(expect.any(Number));

    const today = utcDay(Date.now());
    const report = await api("POST", "/v1/tasks/daily-stats", { payload: { date: today } });
    expect((await settle(report.body.id, undefined, app.url)).state).toBe("succeeded");
    const stored = await api("GET", `/v1/stats/daily/${today}`);
    expect(stored.status).toBe(200);
    expect(stored.body.tasks[`counted-${tag}`]).toMatchObject(expected);

    // Mailed once to the configured address, even when the report is built again.
    const again = await api("POST", "/v1/tasks/daily-stats", { payload: { date: today } });
    await settle(again.body.id, undefined, app.url);
    const mails = await until("the stats email", async () => {
      const m = (await mailbox.all()).filter((e) => String(e.to).includes(`stats-${tag}@`));
      return m.length ? m : undefined;
    });
    await new Promise((r) => setTimeout(r, 300));
    expect((await mailbox.all()).filter((e) => String(e.to).includes(`stats-${tag}@`))).toHaveLength(1);
    expect(mails[0].text).toContain(`counted-${tag}`);

    expect((await api("GET", "/v1/stats/daily/1999-01-01")).status).toBe(404);
    expect((await api("GET", "/v1/stats/daily/yesterday")).status).toBe(400);
  });
});
