// A task that waits for room after a 429 is held by the message its wait published, not by the
// one whose attempt met the 429 (src/rate-limit-wait.ts). When QStash gives up on that earlier
// message anyway (its delivery answered 200, but the answer never reached QStash: a timeout under
// load, a dropped connection, an isolate killed after the publish), its failure callback must not
// fail the task that still waits for the other message. The app runs on the Node entry behind a
// proxy that loses the answer to the task's first delivery; the stack's broker delivers through it.
import http from "node:http";
import type { AddressInfo } from "node:net";
import * as v from "valibot";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serveNode } from "../src/node.ts";
import { defineTask, RateLimited, type TaskDefinition } from "../src/task.ts";
import { tasks as builtIn } from "../tasks/index.ts";
import { broker, call, settle, stack, until } from "./helpers/api.ts";

const tag = Math.random().toString(36).slice(2, 8);
/** Attempts each task id ran, in order. */
const ran = new Map<string, number[]>();
const limited = defineTask({
  name: `limited-${tag}`,
  input: v.object({ n: v.number(), thenFail: v.optional(v.boolean()) }),
  retries: 0,
  async run({ n, thenFail }, ctx) {
    ran.set(ctx.id, [...(ran.get(ctx.id) ?? []), ctx.attempt]);
    // The provider's limit is met on the first attempt, with a Retry-After far enough away that
    // the wait's message is still pending when QStash gives up on the first.
    if (ctx.attempt === 1) throw new RateLimited({ after: 3_000, message: "slow down" });
    if (thenFail) throw new Error("broken");
    return n;
  },
});

/** Deliveries of this task whose answer the proxy still loses (the app answered; QStash hears a 502). */
let loseAnswers = 0;
/** Publishes of a wait's message the proxy still refuses (as QStash unreachable would). */
let refuseWaits = 0;
const seen: { path: string; status: number; told: number }[] = [];
let appUrl = "";
/** One proxy for both directions: QStash's API (/v2/…) in front of the broker, the app's routes behind it. */
const proxy = http.createServer(async (req, res) => {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const body = Buffer.concat(chunks);
  const toBroker = req.url?.startsWith("/v2/") ?? false;
  if (toBroker && refuseWaits > 0 && body.toString().includes('"waited"')) {
    refuseWaits--;
    return void res.writeHead(500, { "content-type": "application/json" }).end('{"error":"injected: QStash is unavailable"}');
  }
  const headers = Object.fromEntries(
    Object.entries(req.headers).filter(([k]) => !["host", "connection", "content-length"].includes(k)) as [string, string][],
  );
  const r = await fetch((toBroker ? stack().broker : appUrl) + req.url, {
    method: req.method!,
    headers,
    ...(req.method === "GET" || req.method === "HEAD" ? {} : { body }),
  });
  const reply = Buffer.from(await r.arrayBuffer());
  const lost = req.url === "/qstash/deliver" && body.toString().includes(limited.name) && loseAnswers > 0;
  if (lost) loseAnswers--;
  const told = lost ? 502 : r.status;
  if (!toBroker) seen.push({ path: req.url ?? "", status: r.status, told });
  res.writeHead(told, { "content-type": r.headers.get("content-type") ?? "application/json" }).end(lost ? "" : reply);
});

let app: { url: string; close: () => Promise<void> };
beforeAll(async () => {
  await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
  const via = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  const env: Record<string, string> = { ...stack().env, CELERIAC_PUBLIC_URL: via, QSTASH_URL: via };
  app = await serveNode({ port: 0, tasks: [...builtIn, limited] as TaskDefinition[], env: () => env });
  appUrl = app.url;
});
afterAll(async () => {
  await app?.close();
  proxy.closeAllConnections();
  proxy.close();
});

const auth = () => ({ authorization: `Bearer ${stack().env.QSTASH_TOKEN}` });
/** The message a task's rate-limit wait published: the task's other message. */
async function waitMessage(id: string, first: string): Promise<string> {
  const { events } = await (
    await fetch(`${stack().broker}/v2/events?label=${encodeURIComponent(id)}&state=CREATED`, { headers: auth() })
  ).json();
  const ids = [...new Set<string>(events.map((e: { messageId: string }) => e.messageId))].filter((m) => m !== first);
  expect(ids).toHaveLength(1);
  return ids[0]!;
}
const failureCallbacks = () => seen.filter((s) => s.path === "/qstash/failure" && s.status === 200).length;
const get = async (id: string) => (await call("GET", `/v1/tasks/${id}`, undefined, { base: app.url })).body;

describe("QStash gives up on the message of a task that waits for room under another", () => {
  it("leaves the task retrying, and the wait's message runs it", async () => {
    loseAnswers = 1;
    const r = await call("POST", `/v1/tasks/${limited.name}`, { payload: { n: 7 } }, { base: app.url });
    expect(r.status).toBe(202);
    const id: string = r.body.id;
    const first: string = r.body.messageId;
    // Its only delivery meets the 429: the task waits for room under a new message, and the
    // delivery answers 200, which QStash never hears. With no retries left, QStash gives up on
    // the first message and calls the failure callback.
    await until("QStash's failure callback to be answered", async () => (failureCallbacks() === 1 ? true : undefined));
    expect(seen.filter((s) => s.path === "/qstash/deliver").map((s) => [s.status, s.told])).toEqual([[200, 502]]);
    expect(ran.get(id)).toEqual([1]);
    expect(await get(id)).toMatchObject({ state: "retrying", attempts: 1, error: { code: "rate_limited" } });
    // The wait's message comes (delivered now rather than in 50 minutes) and runs the task.
    expect((await broker.deliver(await waitMessage(id, first), 1)).statuses).toEqual([200]);
    expect(await settle(id, undefined, app.url)).toMatchObject({ state: "succeeded", attempts: 2, result: 7 });
    expect(ran.get(id)).toEqual([1, 2]);
  });

  it("publishes the wait's message when the delivery that recorded the wait could not, instead of failing the task", async () => {
    // The wait is recorded, but its message's publish is refused: the delivery falls back to an
    // ordinary retry, which with no retries left answers 500, and QStash gives up.
    refuseWaits = 1;
    const r = await call("POST", `/v1/tasks/${limited.name}`, { payload: { n: 8 } }, { base: app.url });
    expect(r.status).toBe(202);
    const id: string = r.body.id;
    await until("QStash's failure callback to be answered", async () => (failureCallbacks() === 2 ? true : undefined));
    expect(refuseWaits).toBe(0);
    expect(ran.get(id)).toEqual([1]);
    expect(await get(id)).toMatchObject({ state: "retrying", attempts: 1, error: { code: "rate_limited" } });
    // The failure callback published the wait's message, which runs the task.
    expect((await broker.deliver(await waitMessage(id, r.body.messageId), 1)).statuses).toEqual([200]);
    expect(await settle(id, undefined, app.url)).toMatchObject({ state: "succeeded", attempts: 2, result: 8 });
  });

  it("still fails a task whose message went on after a wait it could not publish, and keeps that message's dead letter", async () => {
    // The wait's publish is refused: the delivery falls back to an ordinary retry of its own
    // message, whose next attempt fails for good; QStash gives up on that message.
    refuseWaits = 1;
    const r = await call("POST", `/v1/tasks/${limited.name}`, { payload: { n: 9, thenFail: true }, retries: 1 }, { base: app.url });
    expect(r.status).toBe(202);
    const id: string = r.body.id;
    await until("QStash's failure callback to be answered", async () => (failureCallbacks() === 3 ? true : undefined));
    expect(ran.get(id)).toEqual([1, 2]);
    const done = await get(id);
    expect(done).toMatchObject({ state: "failed", attempts: 2, error: { message: "broken" } });
    // Its dead letter is noted on the task (for the dead-letter view and its replay), not deleted.
    expect(done.dlqId).toBeTruthy();
  });
});
