/** Broker conformance: flow control, FIFO queues, cancellation, events/logs, messages API. */
import type { Client } from "@upstash/qstash";
import { describe, expect, it } from "vitest";
import type { Broker } from "../dev/broker/index.ts";
import { sleep, type TestReceiver, useBroker, waitUntil } from "./helpers/broker-receiver.ts";

let broker: Broker;
let rx: TestReceiver;
let client: Client;
useBroker((f) => ({ broker, rx, client } = f));

describe("flow control", () => {
  it("never has more than `parallelism` deliveries in flight per key", async () => {
    rx.on("/fc-par", () => ({ delayMs: 40 }));
    await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        client.publish({ url: `${rx.base}/fc-par`, body: String(i), flowControl: { key: "par-key", parallelism: 2 } }),
      ),
    );
    await rx.waitFor("/fc-par", 8);
    expect(rx.maxConcurrent("/fc-par")).toBe(2);
  });

  it("starts at most `rate` deliveries per period (period scaled)", async () => {
    const published = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        client.publish({ url: `${rx.base}/fc-rate`, body: String(i), flowControl: { key: "rate-key", rate: 2, period: "3m" } }),
      ),
    );
    await rx.waitFor("/fc-rate", 6);
    // The starts as the broker logged them (ACTIVE): arrival times at the receiver would also
    // carry its event-loop delays, which on a loaded machine bunch deliveries up after the fact.
    const logs = await client.logs({ messageIds: published.map((p) => p.messageId) });
    const at = logs.logs
      .filter((l) => l.state === "ACTIVE")
      .map((l) => l.time)
      .sort((a, b) => a - b);
    expect(at).toHaveLength(6);
    // 3 m scaled by 0.001 = a 180 ms window: any 3 consecutive starts span at least ~one window.
    for (let i = 0; i + 2 < at.length; i++) expect((at[i + 2] as number) - (at[i] as number)).toBeGreaterThan(130);
    expect((at[5] as number) - (at[0] as number)).toBeGreaterThan(320);
  });
});

describe("queues", () => {
  it("delivers a FIFO queue in order, one at a time, retries included", async () => {
    let failedOnce = false;
    rx.on("/fifo", (d) => {
      if (d.text === "3" && !failedOnce) {
        failedOnce = true;
        return { status: 500 };
      }
      return { delayMs: Math.floor(Math.random() * 8) };
    });
    const queue = client.queue({ queueName: "orders" });
    for (let i = 0; i < 8; i++) await queue.enqueue({ url: `${rx.base}/fifo`, body: String(i), retries: 2 });
    const ds = await rx.waitFor("/fifo", 9);
    expect(ds.map((d) => d.text)).toEqual(["0", "1", "2", "3", "3", "4", "5", "6", "7"]);
    expect(rx.maxConcurrent("/fifo")).toBe(1);
    const info = await queue.get();
    expect(info).toMatchObject({ name: "orders", parallelism: 1, paused: false, lag: 0 });
  });

  it("upserts, pauses, resumes, lists and deletes queues", async () => {
    const q = client.queue({ queueName: "pausable" });
    await q.upsert({ parallelism: 2 });
    await q.pause();
    expect((await q.get()).paused).toBe(true);
    await q.enqueueJSON({ url: `${rx.base}/paused`, body: { n: 1 } });
    await client.batch([{ url: `${rx.base}/paused`, body: "2", queueName: "pausable" }]);
    await sleep(60);
    expect(rx.at("/paused")).toHaveLength(0);
    expect((await q.get()).lag).toBe(2);
    await q.resume();
    await rx.waitFor("/paused", 2);
    expect((await client.queue().list()).map((x) => x.name)).toEqual(expect.arrayContaining(["orders", "pausable"]));
    expect((await q.get()).parallelism).toBe(2);
    await q.delete();
    await expect(q.get()).rejects.toThrow();
  });
});

describe("messages", () => {
  it("gets a pending message and cancels it before delivery", async () => {
    const { messageId } = await client.publish({ url: `${rx.base}/cancel`, body: "never", delay: 400 });
    const m = await client.messages.get(messageId);
    expect(m).toMatchObject({ messageId, url: `${rx.base}/cancel`, body: "never", maxRetries: 3 });
    expect(m.notBefore).toBeGreaterThan(Date.now());
    expect(await client.messages.cancel(messageId)).toEqual({ cancelled: 1 });
    await expect(client.messages.get(messageId)).rejects.toThrow();
    const other = await client.publish({ url: `${rx.base}/cancel`, body: "never2", delay: 400 });
    await client.messages.delete(other.messageId);
    await sleep(600);
    expect(rx.at("/cancel")).toHaveLength(0);
    const logs = await client.logs({ messageIds: [messageId] });
    expect(logs.logs.map((l) => l.state)).toEqual(expect.arrayContaining(["CREATED", "CANCEL_REQUESTED", "CANCELLED"]));
  });

  it("bulk cancels by ids and all", async () => {
    const a = await client.publish({ url: `${rx.base}/bulk-cancel`, body: "a", delay: 400 });
    const b = await client.publish({ url: `${rx.base}/bulk-cancel`, body: "b", delay: 400 });
    expect(await client.messages.cancel([a.messageId, b.messageId])).toEqual({ cancelled: 2 });
    await client.publish({ url: `${rx.base}/bulk-cancel`, body: "c", delay: 400 });
    await client.publish({ url: `${rx.base}/bulk-cancel`, body: "d", delay: 400 });
    expect((await client.messages.cancel({ all: true })).cancelled).toBeGreaterThanOrEqual(2);
    await sleep(500);
    expect(rx.at("/bulk-cancel")).toHaveLength(0);
  });
});

describe("events and logs", () => {
  it("records CREATED, ACTIVE, DELIVERED / ERROR, RETRY, FAILED per message", async () => {
    rx.on("/log-fail", () => ({ status: 500 }));
    const ok = await client.publish({ url: `${rx.base}/log-ok`, body: "ok", label: "billing" });
    const bad = await client.publish({ url: `${rx.base}/log-fail`, body: "bad", retries: 1 });
    await waitUntil(async () => (await client.logs({ messageIds: [bad.messageId] })).logs.some((l) => l.state === "FAILED"));
    await waitUntil(async () => (await client.logs({ messageIds: [ok.messageId] })).logs.some((l) => l.state === "DELIVERED"));
    const okLogs = await client.logs({ messageIds: [ok.messageId] });
    expect(okLogs.logs.map((l) => l.state).reverse()).toEqual(["CREATED", "ACTIVE", "DELIVERED"]);
    expect(okLogs.logs[0]).toMatchObject({ messageId: ok.messageId, url: `${rx.base}/log-ok`, labels: ["billing"] });
    expect(okLogs.events).toEqual(okLogs.logs);
    const badStates = (await client.events({ messageIds: [bad.messageId] })).logs.map((l) => l.state).reverse();
    expect(badStates).toEqual(["CREATED", "ACTIVE", "ERROR", "RETRY", "ACTIVE", "ERROR", "FAILED"]);
    const filtered = await client.logs({ filter: { state: "DELIVERED", label: "billing" } });
    expect(filtered.logs.every((l) => l.state === "DELIVERED")).toBe(true);
    expect(filtered.logs.some((l) => l.messageId === ok.messageId)).toBe(true);
    const raw = await fetch(`${broker.url}/v2/logs?count=2`, { headers: { authorization: `Bearer ${broker.token}` } });
    const page = (await raw.json()) as { logs: unknown[]; cursor?: string };
    expect(page.logs).toHaveLength(2);
    expect(page.cursor).toBeTruthy();
    const next = await client.logs({ count: 2, cursor: page.cursor as string });
    expect(next.logs).toHaveLength(2);
    expect(next.logs[0]).not.toEqual(page.logs[0]);
  });
});
