// The callbacks of coalesced tasks are durable: one that cannot be enqueued when its flush ends
// (QStash refused the publish) is enqueued by the flush's retry, or by the flush's failure
// callback, once, and no email goes out twice. The app runs on the Node entry and reaches QStash
// (the stack's broker) through a proxy that refuses chosen publishes; the broker delivers to the
// app directly, and callbacks go to a local receiver.
import { randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Redis } from "@upstash/redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serveNode } from "../src/node.ts";
import { call, keyPrefix, mailbox, postAsQstash, settle, stack, until } from "./helpers/api.ts";
import { startWebhookReceiver, type WebhookReceiver } from "./helpers/webhook-receiver.ts";

/** Publishes of callback tasks the proxy still refuses (answering 500, as QStash down would). */
let refuseCallbacks = 0;
let refused = 0;
const proxy = http.createServer(async (req, res) => {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const body = Buffer.concat(chunks);
  if (refuseCallbacks > 0 && req.url?.startsWith("/v2/publish/") && body.toString().includes('"task":"callback"')) {
    refuseCallbacks--;
    refused++;
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
  res.writeHead(r.status, { "content-type": r.headers.get("content-type") ?? "application/json" }).end(Buffer.from(await r.arrayBuffer()));
});

let app: { url: string; close: () => Promise<void> };
let rx: WebhookReceiver;
beforeAll(async () => {
  await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
  const env: Record<string, string> = { ...stack().env, QSTASH_URL: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}` };
  app = await serveNode({ port: 0, env: () => env });
  env.CELERIAC_PUBLIC_URL = app.url;
  rx = await startWebhookReceiver(stack().env.CELERIAC_WEBHOOK_SECRET!);
});
afterAll(async () => {
  await app?.close();
  await rx?.close();
  proxy.closeAllConnections();
  proxy.close();
});

const redis = () => new Redis({ url: stack().env.UPSTASH_REDIS_REST_URL, token: stack().env.UPSTASH_REDIS_REST_TOKEN });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const told = (path: string) =>
  until(`the callback on ${path}`, async () => {
    const got = rx.receipts(path).filter((r) => r.signature === "valid");
    return got.length ? got : undefined;
  });
const email = (subject: string, cb: string) => ({
  task: "send-email",
  payload: { to: "ada@celeriac.dev", subject, text: "hi" },
  callback: { url: `${rx.base}${cb}`, events: ["task.succeeded"] },
});

describe("callbacks of a batch's items", () => {
  it("one QStash refused when the flush ended is enqueued by the flush's retry, once, and no email is sent again", async () => {
    const mark = randomUUID().slice(0, 8);
    const paths = [`/cb/${mark}/a`, `/cb/${mark}/b`];
    refused = 0;
    refuseCallbacks = 1;
    const r = await call("POST", "/v1/tasks", { tasks: paths.map((p, i) => email(`${mark} ${i}`, p)) }, { base: app.url });
    expect(r.status).toBe(202);
    const ids: string[] = r.body.tasks.map((t: any) => t.id);
    for (const id of ids) expect((await settle(id, undefined, app.url)).state).toBe("succeeded");
    const got = await Promise.all(paths.map(told));
    expect(refused).toBe(1);
    await sleep(500); // a duplicate would have arrived by now
    expect(paths.map((p) => rx.receipts(p).length)).toEqual([1, 1]);
    expect(got.map(([g]) => g!.headers["webhook-id"])).toEqual(ids.map((id) => `${id}.task.succeeded`));
    // The retry ran no batch call again (no second attempt), and each email went out once.
    for (const id of ids) expect((await call("GET", `/v1/tasks/${id}`, undefined, { base: app.url })).body.attempts).toBe(1);
    for (const i of [0, 1]) expect(await mailbox.withSubject(`${mark} ${i}`)).toHaveLength(1);
  });

  it("when QStash gives up on such a flush, its failure callback tells the callers", async () => {
    // Two emails a batch sent (records succeeded, taken last by it) whose callbacks were never
    // enqueued: the flush's retries all failed to, and QStash calls its failure callback.
    const mark = randomUUID().slice(0, 8);
    const paths = [`/cb/${mark}/a`, `/cb/${mark}/b`];
    const window = `zz${Date.now().toString(36)}${mark}`;
    const batch = `send-email.${window}`;
    const r = await call("POST", "/v1/tasks", { tasks: paths.map((p, i) => ({ ...email(`${mark} ${i}`, p), delay: "1h" })) });
    const ids: string[] = r.body.tasks.map((t: any) => t.id);
    for (const id of ids) await redis().hset(`${keyPrefix()}t:${id}`, { state: "succeeded", batch, attempts: 1 });
    await redis().hset(`${keyPrefix()}b:${batch}`, { items: ids.join(","), attempt: 8 });
    await redis().expire(`${keyPrefix()}b:${batch}`, 600);
    const url = `${app.url}/qstash/failure`;
    const flush = { v: 1, flush: { task: "send-email", key: "", window } };
    const body = JSON.stringify({ status: 503, retried: 8, sourceMessageId: `msg_${mark}`, sourceBody: btoa(JSON.stringify(flush)) });
    const res = await postAsQstash(url, body);
    expect(res.status).toBe(200);
    const got = await Promise.all(paths.map(told));
    expect(got.map(([g]) => g!.headers["webhook-id"])).toEqual(ids.map((id) => `${id}.task.succeeded`));
  });
});
