// A coalesced task's item that fails alone, retryably, waits its own retry delay before a flush
// may take it again (src/batch.ts, step 3). A test-only batched task served by the Node entry,
// delivered by the stack's broker, over the real Redis; its runBatch fails an item on its first
// `failFirst` attempts.
import { Redis } from "@upstash/redis";
import * as v from "valibot";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serveNode } from "../src/node.ts";
import { defineTask, type TaskDefinition } from "../src/task.ts";
import { tasks as builtIn } from "../tasks/index.ts";
import { call, keyPrefix, settle, stack, until } from "./helpers/api.ts";

const tag = Math.random().toString(36).slice(2, 8);
const MAX_WAIT_MS = 50;
/** Every runBatch call: the ids it ran, with their attempts. */
const calls: { id: string; attempt: number }[][] = [];
const flaky = defineTask({
  name: `flaky-batch-${tag}`,
  input: v.object({ n: v.number(), failFirst: v.optional(v.number(), 0) }),
  retries: 3,
  batch: { maxSize: 10, maxWaitMs: MAX_WAIT_MS },
  async runBatch(items) {
    calls.push(items.map((it) => ({ id: it.id, attempt: it.attempt })));
    return items.map((it) =>
      it.attempt <= it.payload.failFirst ? { error: new Error("this item failed alone") } : { result: it.payload.n },
    );
  },
  async run({ n }) {
    return n;
  },
});

let app: { url: string; close: () => Promise<void> };
beforeAll(async () => {
  const env = { ...stack().env };
  app = await serveNode({ port: 0, tasks: [...builtIn, flaky] as TaskDefinition[], env: () => env });
  env.CELERIAC_PUBLIC_URL = app.url;
});
afterAll(() => app?.close());

const redis = () => new Redis({ url: stack().env.UPSTASH_REDIS_REST_URL, token: stack().env.UPSTASH_REDIS_REST_TOKEN });
const enqueue = async (payload: unknown, options: Record<string, unknown> = {}) => {
  const r = await call("POST", `/v1/tasks/${flaky.name}`, { payload, ...options }, { base: app.url });
  expect(r.status).toBe(202);
  return r.body.id as string;
};
const get = async (id: string) => (await call("GET", `/v1/tasks/${id}`, undefined, { base: app.url })).body;
const ranTimes = (id: string) => calls.filter((c) => c.some((it) => it.id === id)).length;

describe("an item that fails alone in its batch", () => {
  it("waits its retryDelay in the outbox: the next flushes pass it by, and a flush is armed for when it is due", async () => {
    // An hour's backoff: were it taken by the next flush, it would run again at once.
    const slow = await enqueue({ n: 1, failFirst: 1 }, { retryDelay: { base: 3600 } });
    const failed = await until("its first attempt to fail", async () => {
      const t = await get(slow);
      return t.attempts >= 1 && t.state !== "running" && t.state !== "queued" ? t : undefined;
    });
    expect(failed).toMatchObject({ state: "retrying", attempts: 1, error: { retryable: true } });
    // When the next attempt is due: the failure plus the first retry's wait (base 3600 s).
    const failedAt = Date.parse(failed.history.find((h: any) => h.state === "retrying").at);
    expect(Date.parse(failed.nextAttemptAt)).toBe(failedAt + 3_600_000);
    // Held in its outbox until then, with a flush armed for that time (plus maxWaitMs for company).
    const outbox = `${keyPrefix()}ob:${flaky.name}:`;
    expect(Number(await redis().zscore(outbox, slow))).toBe(failedAt + 3_600_000);
    const arm = String(await redis().get(`${outbox}:arm`));
    const [window, at] = arm.split("@");
    expect(Number(at)).toBe(failedAt + 3_600_000 + MAX_WAIT_MS);
    const auth = { authorization: `Bearer ${stack().env.QSTASH_TOKEN}` };
    const { events } = await (
      await fetch(`${stack().broker}/v2/events?label=${encodeURIComponent(`${flaky.name}.${window}`)}&state=CREATED`, { headers: auth })
    ).json();
    expect(events.map((e: any) => e.url)).toEqual([`${app.url}/qstash/flush`]);

    // Another item of the same outbox goes out in a flush of its own; the waiting one stays put.
    const other = await enqueue({ n: 2 });
    expect((await settle(other, undefined, app.url)).state).toBe("succeeded");
    expect(await get(slow)).toMatchObject({ state: "retrying", attempts: 1 });
    expect(ranTimes(slow)).toBe(1);
    // Waiting in its outbox (no batch will retry a call with it), so it can still be cancelled.
    expect((await call("DELETE", `/v1/tasks/${slow}`, undefined, { base: app.url })).body.state).toBe("cancelled");
  });

  it("cancelled while it waits, then retried through the API, runs at once rather than when its backoff would have ended", async () => {
    const id = await enqueue({ n: 4, failFirst: 1 }, { retryDelay: { base: 3600 } });
    await until("its first attempt to fail", async () => ((await get(id)).state === "retrying" ? true : undefined));
    expect((await call("DELETE", `/v1/tasks/${id}`, undefined, { base: app.url })).body.state).toBe("cancelled");
    const retried = await call("POST", `/v1/tasks/${id}/retry`, undefined, { base: app.url });
    expect(retried.status).toBe(202);
    expect(await settle(id, undefined, app.url)).toMatchObject({ state: "succeeded", attempts: 2, result: 4, generation: 1 });
    expect(ranTimes(id)).toBe(2);
  });

  it("runs again once its retry is due, and succeeds", async () => {
    const id = await enqueue({ n: 3, failFirst: 1 }, { retryDelay: { base: 1 } });
    const done = await settle(id, undefined, app.url);
    expect(done).toMatchObject({ state: "succeeded", attempts: 2, result: 3 });
    expect(calls.filter((c) => c.some((it) => it.id === id)).map((c) => c.find((it) => it.id === id)!.attempt)).toEqual([1, 2]);
    // Its second attempt started no earlier than its first failure plus the 1 s wait (both
    // instants as the task's own history recorded them).
    const entries = [...done.history].reverse();
    const failedAt = Date.parse(entries.find((h: any) => h.state === "retrying").at);
    const retriedAt = Date.parse(entries.find((h: any) => h.state === "running" && h.attempt === 2).at);
    expect(retriedAt).toBeGreaterThanOrEqual(failedAt + 1_000);
  });
});
