// Items waiting in an outbox keep a flush when QStash gives up on the message that should have
// published it: a flush whose next window (or an item's retry window) could not be published, or
// an item's delivery whose join could not publish the window it armed, answers 503 so that its
// retry publishes it; on its last try there is no retry, only its failure callback
// (failGivenUpFlush, giveUp); so does a flush none of whose tries took its batch. And an item a batch holds for its call's retry is that batch's, not
// its own message's: QStash giving up on that message does not fail it, and its redelivery does not
// put it back in its outbox. A test-only batched task (no retries, so a
// flush's first 503 is its last) on the Node entry reaches QStash (the stack's broker) through a
// proxy that refuses chosen publishes; the broker delivers to the app through a front that can
// fail a flush's delivery or hold a failure callback.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Redis } from "@upstash/redis";
import * as v from "valibot";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serveNode } from "../src/node.ts";
import { defineTask, type TaskDefinition } from "../src/task.ts";
import { tasks as builtIn } from "../tasks/index.ts";
import { broker, call, keyPrefix, postAsQstash, settle, stack, until } from "./helpers/api.ts";

const tag = Math.random().toString(36).slice(2, 8);
/** Every runBatch call: the ids it ran. */
const calls: string[][] = [];
const single = defineTask({
  name: `single-batch-${tag}`,
  input: v.object({ n: v.number() }),
  retries: 0,
  // One item per call, and a minute's wait for company (3 s on the broker's scaled clock).
  batch: { maxSize: 1, maxWaitMs: 60_000 },
  async runBatch(items) {
    calls.push(items.map((it) => it.id));
    return items.map((it) => ({ result: it.payload.n }));
  },
  async run({ n }) {
    return n;
  },
});

/** A batched task whose first call fails (retryably); QStash retries its flush an hour later (3 min on the broker's clock). */
let pairFails = 1;
const pair = defineTask({
  name: `pair-batch-${tag}`,
  input: v.object({ n: v.number() }),
  retries: 1,
  retryDelay: { base: 3600 },
  batch: { maxSize: 2, maxWaitMs: 1_000 },
  async runBatch(items) {
    calls.push(items.map((it) => it.id));
    if (pairFails-- > 0) throw new Error("injected: the provider answered 500");
    return items.map((it) => ({ result: it.payload.n }));
  },
  async run({ n }) {
    return n;
  },
});
/** The message ids of the flushes published through the proxy. */
const flushMessages: string[] = [];

/** Flush publishes the proxy still refuses (answering 500, as QStash down would). */
let refuseFlushes = 0;
const failures: number[] = [];
/** Flush deliveries the app's front still answers 500 to before the app sees them (as a worker that died before it took its batch). */
let failFlushDeliveries = 0;
/** While set, failure callbacks wait at the app's door until it resolves; `held` counts them. */
let holdFailures: Promise<void> | undefined;
let held = 0;
const proxy = http.createServer(async (req, res) => {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const body = Buffer.concat(chunks);
  if (refuseFlushes > 0 && req.url?.includes("/qstash/flush")) {
    refuseFlushes--;
    return void res.writeHead(500, { "content-type": "application/json" }).end('{"error":"injected: QStash is unavailable"}');
  }
  const headers = Object.fromEntries(
    Object.entries(req.headers).filter(([k]) => !["host", "connection", "content-length"].includes(k)) as [string, string][],
  );
  const r = await fetch(stack().broker + req.url, {
    method: req.method!,
    headers,
    ...(req.method === "GET" || req.method === "HEAD" ? {} : { body }),
  });
  const answer = Buffer.from(await r.arrayBuffer());
  if (r.ok && req.url?.includes("/qstash/flush")) flushMessages.push(JSON.parse(answer.toString()).messageId);
  res.writeHead(r.status, { "content-type": r.headers.get("content-type") ?? "application/json" }).end(answer);
});

let app: { url: string; close: () => Promise<void> };
beforeAll(async () => {
  await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
  const env: Record<string, string> = { ...stack().env, QSTASH_URL: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}` };
  // Counts the failure callbacks the app answered, to know when QStash's last word was heard.
  const served = await serveNode({ port: 0, tasks: [...builtIn, single, pair] as TaskDefinition[], env: () => env });
  const front = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const headers = Object.fromEntries(
      Object.entries(req.headers).filter(([k]) => !["host", "connection", "content-length"].includes(k)) as [string, string][],
    );
    const body = req.method === "GET" || req.method === "HEAD" ? {} : { body: Buffer.concat(chunks) };
    if (req.url === "/qstash/flush" && failFlushDeliveries > 0) {
      failFlushDeliveries--;
      return void res.writeHead(500, { "content-type": "application/json" }).end('{"error":"injected: the worker died"}');
    }
    if (req.url === "/qstash/failure" && holdFailures) {
      held++;
      await holdFailures;
    }
    const r = await fetch(served.url + req.url, { method: req.method!, headers, ...body });
    if (req.url === "/qstash/failure") failures.push(r.status);
    res
      .writeHead(r.status, { "content-type": r.headers.get("content-type") ?? "application/json" })
      .end(Buffer.from(await r.arrayBuffer()));
  });
  await new Promise<void>((r) => front.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(front.address() as AddressInfo).port}`;
  env.CELERIAC_PUBLIC_URL = url;
  app = {
    url,
    close: async () => {
      front.closeAllConnections();
      await new Promise<void>((r) => front.close(() => r()));
      await served.close();
    },
  };
});
afterAll(async () => {
  await app?.close();
  proxy.closeAllConnections();
  proxy.close();
});

describe("when QStash gives up", () => {
  it("on a flush that could not publish its next window's, the item left waiting still goes out", async () => {
    // Two items, delivered one after the other: the first arms a window (its flush published),
    // the second joins it.
    const ids: string[] = [];
    for (const n of [1, 2]) {
      const r = await call("POST", `/v1/tasks/${single.name}`, { payload: { n }, delay: "1h" }, { base: app.url });
      expect(r.status).toBe(202);
      expect((await broker.deliver(r.body.messageId, 1)).statuses).toEqual([200]);
      ids.push(r.body.id);
    }
    // The flush takes one (maxSize 1) and sends it; the next window's flush, for the other, is
    // refused: the flush answers 503, its last try, and QStash gives up on it.
    refuseFlushes = 1;
    await until("the flush's failure callback to be answered", async () => (failures.length ? true : undefined));
    expect(failures).toEqual([200]);
    expect(refuseFlushes).toBe(0);
    // The one left waiting still goes out, once, in a call of its own.
    expect(await settle(ids[1]!, undefined, app.url)).toMatchObject({ state: "succeeded", attempts: 1, result: 2 });
    expect(calls.filter((c) => ids.includes(c[0]!))).toEqual([[ids[0]], [ids[1]]]);
    expect((await call("GET", `/v1/tasks/${ids[0]}`, undefined, { base: app.url })).body).toMatchObject({
      state: "succeeded",
      attempts: 1,
    });
  });

  it("on an item's own message, whose join could not publish the flush it armed, the item is not failed: that flush goes out with it and the items that joined it", async () => {
    const before = failures.length;
    // The item's delivery joins its outbox and arms a window whose flush's publish is refused:
    // 503, its last try, and QStash gives up on the item's message. Its failure callback waits.
    let release!: () => void;
    holdFailures = new Promise<void>((r) => (release = r));
    refuseFlushes = 1;
    const a = await call("POST", `/v1/tasks/${single.name}`, { payload: { n: 3 } }, { base: app.url });
    expect(a.status).toBe(202);
    await until("the item's failure callback", async () => (held === 1 ? true : undefined));
    // Meanwhile another item joins the armed window (nothing to publish: it is armed).
    const b = await call("POST", `/v1/tasks/${single.name}`, { payload: { n: 4 }, delay: "1h" }, { base: app.url });
    expect((await broker.deliver(b.body.messageId, 1)).statuses).toEqual([200]);
    release();
    holdFailures = undefined;
    await until("the failure callback to be answered", async () => (failures.length > before ? true : undefined));
    expect(failures.slice(before)).toEqual([200]);
    // Both go out, each once.
    for (const [r, n] of [
      [a, 3],
      [b, 4],
    ] as const) {
      expect(await settle(r.body.id, undefined, app.url)).toMatchObject({ state: "succeeded", attempts: 1, result: n });
      expect(calls.filter((c) => c.includes(r.body.id))).toHaveLength(1);
    }
  });

  it("on an item's own message while the batch that holds it waits to retry its call, the item is not failed: that retry runs it", async () => {
    // Two items fill a batch, whose call fails: both are retrying, held by the batch, whose flush
    // QStash retries in an hour.
    const ids: string[] = [];
    for (const n of [5, 6]) {
      const r = await call("POST", `/v1/tasks/${pair.name}`, { payload: { n }, delay: "1h" }, { base: app.url });
      expect(r.status).toBe(202);
      expect((await broker.deliver(r.body.messageId, 1)).statuses).toEqual([200]);
      ids.push(r.body.id);
    }
    const flushId = flushMessages.at(-1)!;
    for (const id of ids) await settle(id, ["retrying"], app.url);
    // QStash calls back about the first item's own message (a repeated callback, or one about a
    // join whose 503 was its last try while another delivery published the window's flush).
    const url = `${app.url}/qstash/failure`;
    const source = {
      v: 1,
      id: ids[0],
      task: pair.name,
      payload: { n: 5 },
      options: { retries: 1, timeout: 30, resultTtl: 600 },
      createdAt: 0,
      runAt: 0,
    };
    const body = JSON.stringify({ status: 503, retried: 1, sourceMessageId: `msg_${tag}`, sourceBody: btoa(JSON.stringify(source)) });
    const res = await postAsQstash(url, body);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ id: ids[0], recorded: false });
    // The flush's retry sends both (its body is the first call's) and records both.
    expect((await broker.deliver(flushId, 1)).statuses).toEqual([200]);
    for (const [i, id] of ids.entries()) {
      expect(await settle(id, undefined, app.url)).toMatchObject({ state: "succeeded", attempts: 2, result: 5 + i });
    }
    expect(calls.filter((c) => c.includes(ids[0]!))).toEqual([ids, ids]);
  });
});

describe("when QStash gives up on a flush that never took its batch", () => {
  it("its items still go out: the window's flush is published again, not deduplicated against the one given up on", async () => {
    // The flush's only try (no retries) fails before it takes its batch; QStash gives up on it.
    const before = failures.length;
    failFlushDeliveries = 1;
    const r = await call("POST", `/v1/tasks/${single.name}`, { payload: { n: 9 } }, { base: app.url });
    expect(r.status).toBe(202);
    await until("the flush's failure callback to be answered", async () => (failures.length > before ? true : undefined));
    expect(failures.slice(before)).toEqual([200]);
    expect(failFlushDeliveries).toBe(0);
    expect(await settle(r.body.id, undefined, app.url)).toMatchObject({ state: "succeeded", attempts: 1, result: 9 });
    expect(calls.filter((c) => c.includes(r.body.id))).toHaveLength(1);
  });
});

describe("an item a batch holds for its call's retry", () => {
  it("is not put back in its outbox by a redelivery of its own message: only that retry sends it", async () => {
    pairFails = 1;
    const ids: string[] = [];
    const messages: string[] = [];
    for (const n of [7, 8]) {
      const r = await call("POST", `/v1/tasks/${pair.name}`, { payload: { n }, delay: "1h" }, { base: app.url });
      expect((await broker.deliver(r.body.messageId, 1)).statuses).toEqual([200]);
      ids.push(r.body.id);
      messages.push(r.body.messageId);
    }
    const flushId = flushMessages.at(-1)!;
    for (const id of ids) await settle(id, ["retrying"], app.url);
    // QStash delivers the first item's message again (its first answer was lost): acknowledged,
    // the item stays its batch's. Put back in its outbox, a later flush would send it under
    // another key, and the batch's retry (whose body holds it) again.
    expect((await broker.deliver(messages[0]!, 1)).statuses).toEqual([200]);
    const redis = new Redis({ url: stack().env.UPSTASH_REDIS_REST_URL, token: stack().env.UPSTASH_REDIS_REST_TOKEN });
    expect(await redis.zscore(`${keyPrefix()}ob:${pair.name}:`, ids[0]!)).toBeNull();
    expect((await broker.deliver(flushId, 1)).statuses).toEqual([200]);
    for (const [i, id] of ids.entries()) {
      expect(await settle(id, undefined, app.url)).toMatchObject({ state: "succeeded", attempts: 2, result: 7 + i });
    }
    expect(calls.filter((c) => c.includes(ids[0]!))).toEqual([ids, ids]);
  });
});
