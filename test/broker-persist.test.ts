/** Broker conformance: persistence across a restart, the dev control API (duplicates, state). */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@upstash/qstash";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Broker, startBroker } from "../dev/broker/index.ts";
import { startReceiver, type TestReceiver, waitUntil } from "./helpers/broker-receiver.ts";

let rx: TestReceiver;
const dirs: string[] = [];
const brokers: Broker[] = [];

beforeAll(async () => {
  rx = await startReceiver({
    currentSigningKey: "sig_7kYjw48mhY7kAjqNGcy6cr29RJ6r",
    nextSigningKey: "sig_5ZB6DVzB1wjE8S6rZ7eenA8Pdnhs",
  });
});
afterAll(async () => {
  for (const b of brokers) await b.close();
  await rx?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function broker(opts: Parameters<typeof startBroker>[0] = {}) {
  const b = await startBroker({ port: 0, timeScale: 0.001, ...opts });
  brokers.push(b);
  return { b, client: new Client({ baseUrl: b.url, token: b.token, retry: false }) };
}

describe("persistence", () => {
  it("a delayed message, schedules, queues and the DLQ survive a restart on the same dataDir", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "celeriac-broker-"));
    dirs.push(dataDir);
    rx.on("/persist-fail", () => ({ status: 500, body: "nope" }));
    const first = await broker({ dataDir });
    const failed = await first.client.publish({ url: `${rx.base}/persist-fail`, body: "f", retries: 0 });
    const { messageId } = await first.client.publish({ url: `${rx.base}/persisted`, body: "survivor ✓", delay: 400 });
    const { scheduleId } = await first.client.schedules.create({ destination: `${rx.base}/persist-sched`, cron: "0 0 1 1 *" });
    await first.client.queue({ queueName: "kept" }).upsert({ parallelism: 3 });
    await waitUntil(async () => (await first.client.dlq.listMessages()).messages.some((m) => m.messageId === failed.messageId));
    await first.b.close();
    expect(rx.at("/persisted")).toHaveLength(0);

    const second = await broker({ dataDir });
    const [d] = await rx.waitFor("/persisted", 1, 5000);
    expect(d?.messageId).toBe(messageId);
    expect(d?.text).toBe("survivor ✓");
    expect(d?.verified).toBe(true);
    expect((await second.client.schedules.get(scheduleId)).destination).toBe(`${rx.base}/persist-sched`);
    expect((await second.client.queue({ queueName: "kept" }).get()).parallelism).toBe(3);
    const dlq = await second.client.dlq.listMessages();
    expect(dlq.messages.find((m) => m.messageId === failed.messageId)?.responseBody).toBe("nope");
  });
});

describe("control API", () => {
  it("POST /_broker/messages/{id}/deliver?copies=2 delivers concurrent signed duplicates", async () => {
    const { b, client } = await broker();
    rx.on("/dup", () => ({ delayMs: 50 }));
    const { messageId } = await client.publish({ url: `${rx.base}/dup`, body: "once?" });
    await rx.waitFor("/dup", 1);
    await waitUntil(async () => (await client.logs({ messageIds: [messageId] })).logs.some((l) => l.state === "DELIVERED"));
    const res = await fetch(`${b.url}/_broker/messages/${messageId}/deliver?copies=2`, {
      method: "POST",
      headers: { authorization: `Bearer ${b.token}` },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ statuses: [200, 200] });
    const ds = rx.at("/dup");
    expect(ds).toHaveLength(3);
    expect(ds.every((d) => d.messageId === messageId && d.verified && d.text === "once?")).toBe(true);
    expect(new Set(ds.map((d) => d.signature)).size).toBe(3);
    expect(rx.maxConcurrent("/dup")).toBe(2);
  });

  it("GET /_broker/state shows messages in flight and the DLQ; control needs the token", async () => {
    const { b, client } = await broker();
    rx.on("/state-fail", () => ({ status: 500 }));
    const pending = await client.publish({ url: `${rx.base}/state`, body: "later", delay: 60_000 });
    const failed = await client.publish({ url: `${rx.base}/state-fail`, body: "x", retries: 0 });
    const state = await waitUntil(async () => {
      const r = await fetch(`${b.url}/_broker/state`, { headers: { authorization: `Bearer ${b.token}` } });
      const s = (await r.json()) as { messages: Array<Record<string, unknown>>; dlq: Array<Record<string, unknown>> };
      return s.dlq.some((e) => e.messageId === failed.messageId) && s;
    });
    const m = state.messages.find((x) => x.messageId === pending.messageId);
    expect(m).toMatchObject({ destination: `${rx.base}/state`, state: "CREATED", attempts: 0 });
    expect(m?.nextAttemptAt).toBeGreaterThan(Date.now());
    expect((await fetch(`${b.url}/_broker/state`)).status).toBe(401);
    const unknown = await fetch(`${b.url}/_broker/messages/msg_nope/deliver`, {
      method: "POST",
      headers: { authorization: `Bearer ${b.token}` },
    });
    expect(unknown.status).toBe(404);
  });
});
