// An attempt is fenced by its claim: its time is counted from the claim, so a delivery whose
// claim lapsed before it could run (here: the reply to its claim was slow, as under load) calls
// nothing once another delivery took the task over. The app runs on the Node entry and reaches
// Redis through a proxy that can hold one reply; the broker delivers a webhook task to it, which
// POSTs to a local receiver. (The Worker in workerd behaves alike: it too goes on with a delivery
// QStash stopped waiting for, and sent the webhook twice before the fix.)
import { randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Redis } from "@upstash/redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serveNode } from "../src/node.ts";
import { broker, call, keyPrefix, settle, stack, until } from "./helpers/api.ts";
import { startWebhookReceiver, type WebhookReceiver } from "./helpers/webhook-receiver.ts";

/** While set: the reply to the next Redis request naming `id` (a script that ran) is held until `release`. */
let hold: { id: string; release: Promise<void> } | undefined;
const proxy = http.createServer(async (req, res) => {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const body = Buffer.concat(chunks);
  const headers = Object.fromEntries(
    Object.entries(req.headers).filter(([k]) => !["host", "connection", "content-length"].includes(k)) as [string, string][],
  );
  const r = await fetch(`${stack().env.UPSTASH_REDIS_REST_URL}${req.url ?? ""}`, { method: req.method!, headers, body });
  const reply = Buffer.from(await r.arrayBuffer());
  const h = hold;
  if (h && body.toString().includes(h.id) && !reply.toString().includes("NOSCRIPT")) {
    hold = undefined;
    await h.release;
  }
  res.writeHead(r.status, { "content-type": r.headers.get("content-type") ?? "application/json" }).end(reply);
});

let app: { url: string; close: () => Promise<void> };
let rx: WebhookReceiver;
beforeAll(async () => {
  await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
  const env: Record<string, string> = {
    ...stack().env,
    UPSTASH_REDIS_REST_URL: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
  };
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

describe("a delivery that lost its claim", () => {
  it("calls nothing: the webhook goes out once, from the delivery that took the task over", async () => {
    const path = `/fenced/${randomUUID()}`;
    const r = await call(
      "POST",
      "/v1/tasks/webhook",
      { payload: { url: `${rx.base}${path}` }, timeout: 1, delay: "1h" },
      { base: app.url },
    );
    expect(r.status).toBe(202);
    const id: string = r.body.id;
    const rec = `${keyPrefix()}t:${id}`;
    // The first delivery claims the task; the reply to its claim is held.
    let release!: () => void;
    hold = { id, release: new Promise<void>((res) => (release = res)) };
    const first = broker.deliver(r.body.messageId, 1);
    const claimedAt = await until("the first delivery's claim", async () => {
      const t = await redis().hgetall<Record<string, string>>(rec);
      return t?.state === "running" ? Number(t.startedAt) : undefined;
    });
    // Its claim lapses (as it would after the task's timeout and the lease's grace: moved here
    // rather than waited for), and so has the attempt's own time (timeout 1 s, from the claim).
    await redis().hset(rec, { leaseUntil: Date.now() - 1 });
    await until("the first attempt's time to pass", async () => (Date.now() > claimedAt + 1_000 ? true : undefined));
    // Another delivery (a QStash retry, or a copy) takes the task over and sends the webhook.
    expect((await broker.deliver(r.body.messageId, 1)).statuses).toEqual([200]);
    expect(await settle(id, undefined, app.url)).toMatchObject({ state: "succeeded", attempts: 2 });
    // The first delivery hears back from Redis at last: it must not send the webhook again.
    release();
    await first;
    expect(rx.receipts(path).map((x) => x.headers["webhook-id"])).toEqual([id]);
    expect((await call("GET", `/v1/tasks/${id}`, undefined, { base: app.url })).body).toMatchObject({ state: "succeeded", attempts: 2 });
  });
});
