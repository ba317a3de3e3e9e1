/** Broker conformance: retries and backoff, Retry-After, 489, timeouts, callbacks, the DLQ. */
import type { Client } from "@upstash/qstash";
import { describe, expect, it } from "vitest";
import type { Broker } from "../dev/broker/index.ts";
import { type Delivery, sleep, type TestReceiver, useBroker, waitUntil } from "./helpers/broker-receiver.ts";

let broker: Broker;
let rx: TestReceiver;
let client: Client;
useBroker((f) => ({ broker, rx, client } = f));

const gaps = (ds: Delivery[]) => ds.slice(1).map((d, i) => d.at - (ds[i] as Delivery).at);
/**
 * The waits the broker chose, in order, from its RETRY events (due time minus decision time, ms).
 * The arrival gaps at the receiver only bound them from below: on a loaded machine an attempt can
 * arrive late, never early, so upper bounds are read from the broker's own decisions.
 */
async function retryWaits(messageId: string): Promise<number[]> {
  const { logs } = await client.logs({ messageIds: [messageId] });
  return logs
    .filter((l) => l.state === "RETRY")
    .sort((a, b) => a.time - b.time)
    .map((l) => (l.nextDeliveryTime as number) - l.time);
}
/** Each wait equals the expected one to the millisecond the two clock reads may differ by. */
const expectWaits = (got: number[], want: number[]) => {
  expect(got).toHaveLength(want.length);
  for (const [i, g] of got.entries()) expect(Math.abs(g - (want[i] as number))).toBeLessThanOrEqual(2);
};
const decode = (b64: string) => Buffer.from(b64, "base64").toString("utf8");

describe("retries", () => {
  it("retries with the default backoff e^(2.5n) s, scaled, same message id, Upstash-Retried counting", async () => {
    rx.on("/backoff", () => ({ status: 500 }));
    const { messageId } = await client.publish({ url: `${rx.base}/backoff`, body: "b", retries: 3 });
    const ds = await rx.waitFor("/backoff", 4, 10_000);
    expect(ds.map((d) => d.retried)).toEqual([0, 1, 2, 3]);
    expect(new Set(ds.map((d) => d.messageId))).toEqual(new Set([messageId]));
    expect(ds.every((d) => d.verified)).toBe(true);
    expect(new Set(ds.map((d) => d.signature)).size).toBe(4);
    // Nominal 12 ms, 148 ms, 1808 ms at timeScale 0.001: e^(2.5n) s, scaled.
    expectWaits(
      await retryWaits(messageId),
      [1, 2, 3].map((n) => Math.exp(2.5 * n)),
    );
    const [g1, g2, g3] = gaps(ds) as [number, number, number];
    expect(g1).toBeGreaterThanOrEqual(10);
    expect(g2).toBeGreaterThanOrEqual(140);
    expect(g3).toBeGreaterThanOrEqual(1790);
    await sleep(50);
    expect(rx.at("/backoff")).toHaveLength(4);
  });

  it("uses an Upstash-Retry-Delay expression (ms, retried from 0)", async () => {
    rx.on("/expr", () => ({ status: 503 }));
    const { messageId } = await client.publish({ url: `${rx.base}/expr`, body: "e", retries: 3, retryDelay: "100000 * (1 + retried)" });
    const ds = await rx.waitFor("/expr", 4, 5000);
    expectWaits(await retryWaits(messageId), [100, 200, 300]);
    const [g1, g2, g3] = gaps(ds) as [number, number, number];
    expect(g1).toBeGreaterThanOrEqual(95);
    expect(g2).toBeGreaterThanOrEqual(195);
    expect(g3).toBeGreaterThanOrEqual(295);
  });

  it("honours Retry-After: seconds, Go duration, 0, and falls back when over a day", async () => {
    const plan = ["172800", "120", "1m30s", "0"];
    rx.on("/retry-after", (_d, n) => (n < plan.length ? { status: 429, headers: { "Retry-After": plan[n] as string } } : { status: 200 }));
    const { messageId } = await client.publish({ url: `${rx.base}/retry-after`, body: "r", retries: 4 });
    const ds = await rx.waitFor("/retry-after", 5, 5000);
    // Over a day falls back to the default backoff (12 ms, not 172.8 s); then 120 s, 90 s, 0, scaled.
    expectWaits(await retryWaits(messageId), [Math.exp(2.5), 120, 90, 0]);
    const [, g2, g3] = gaps(ds) as [number, number, number, number];
    expect(g2).toBeGreaterThanOrEqual(115);
    expect(g3).toBeGreaterThanOrEqual(85);
  });

  it("489 + Upstash-NonRetryable-Error goes straight to the DLQ; a bare 489 is retried", async () => {
    rx.on("/nonretryable", () => ({ status: 489, headers: { "Upstash-NonRetryable-Error": "true" }, body: "nope" }));
    rx.on("/bare-489", () => ({ status: 489 }));
    const a = await client.publish({ url: `${rx.base}/nonretryable`, body: "n", retries: 3 });
    const b = await client.publish({ url: `${rx.base}/bare-489`, body: "n", retries: 1 });
    await rx.waitFor("/bare-489", 2);
    const entry = await waitUntil(async () => (await client.dlq.listMessages()).messages.find((m) => m.messageId === a.messageId));
    expect(entry.responseStatus).toBe(489);
    expect(entry.responseBody).toBe("nope");
    expect(rx.at("/nonretryable")).toHaveLength(1);
    await waitUntil(async () => (await client.dlq.listMessages()).messages.find((m) => m.messageId === b.messageId));
  });

  it("aborts an attempt after Upstash-Timeout (real time) and counts it as failed", async () => {
    rx.on("/slow", () => ({ delayMs: 600 }));
    const { messageId } = await client.publish({ url: `${rx.base}/slow`, body: "s", retries: 0, timeout: "0.2s" as "1s" });
    const entry = await waitUntil(async () => (await client.dlq.listMessages()).messages.find((m) => m.messageId === messageId), 3000);
    expect(entry.responseStatus).toBeUndefined();
    expect(rx.at("/slow").length).toBeGreaterThanOrEqual(1);
  });
});

describe("callbacks", () => {
  it("calls Upstash-Callback after every attempt with the documented, signed body", async () => {
    rx.on("/flaky", (_d, n) => (n === 0 ? { status: 500, body: "boom" } : { status: 200, body: "done ✓" }));
    const body = JSON.stringify({ hi: "ünïcode ✓" });
    const { messageId } = await client.publish({
      url: `${rx.base}/flaky`,
      body,
      retries: 2,
      callback: `${rx.base}/cb`,
      headers: { "Content-Type": "application/json", "X-Src": "yes", "Upstash-Callback-Forward-X-Cb": "cbv" },
    });
    const cbs = await rx.waitFor("/cb", 2);
    expect(cbs.every((c) => c.verified)).toBe(true);
    expect(cbs[0]?.headers["x-cb"]).toBe("cbv");
    const parsed = cbs.map((c) => JSON.parse(c.text)).sort((x, y) => x.retried - y.retried);
    const [first, second] = parsed;
    expect(first).toMatchObject({ status: 500, retried: 0, maxRetries: 2, sourceMessageId: messageId, method: "POST" });
    expect(decode(first.body)).toBe("boom");
    expect(second).toMatchObject({ status: 200, retried: 1, sourceMessageId: messageId, url: `${rx.base}/flaky` });
    expect(decode(second.body)).toBe("done ✓");
    expect(decode(second.sourceBody)).toBe(body);
    expect(second.sourceHeader["X-Src"]).toEqual(["yes"]);
    expect(second.header).toBeTypeOf("object");
    expect(Object.values(second.header).every(Array.isArray)).toBe(true);
    expect(second.createdAt).toBeGreaterThan(Date.now() - 60_000);
    expect(second).not.toHaveProperty("dlqId");
    expect(second).not.toHaveProperty("scheduleId");
    expect(second).not.toHaveProperty("topicName");
  });

  it("calls Upstash-Failure-Callback once, after the last attempt, with the dlqId", async () => {
    rx.on("/always-fails", () => ({ status: 502, body: "bad gateway ✗" }));
    const { messageId } = await client.publish({
      url: `${rx.base}/always-fails`,
      body: "x",
      retries: 1,
      failureCallback: `${rx.base}/failure-cb`,
    });
    const [fc] = await rx.waitFor("/failure-cb", 1);
    await sleep(60);
    expect(rx.at("/failure-cb")).toHaveLength(1);
    expect(rx.at("/always-fails")).toHaveLength(2);
    expect(fc?.verified).toBe(true);
    const payload = JSON.parse(fc?.text ?? "{}");
    expect(payload).toMatchObject({ status: 502, retried: 1, maxRetries: 1, sourceMessageId: messageId });
    expect(decode(payload.body)).toBe("bad gateway ✗");
    const { messages } = await client.dlq.listMessages();
    expect(messages.find((m) => m.dlqId === payload.dlqId)?.messageId).toBe(messageId);
  });
});

describe("DLQ", () => {
  it("lists, retries (new message, delivered) and deletes", async () => {
    let healthy = false;
    rx.on("/dlq", () => (healthy ? { status: 200 } : { status: 500, body: "down", headers: { "X-Why": "maintenance" } }));
    const { messageId } = await client.publish({ url: `${rx.base}/dlq`, body: "payload ✓", retries: 0 });
    const entry = await waitUntil(async () =>
      (await client.dlq.listMessages({ filter: { url: `${rx.base}/dlq` } })).messages.find((m) => m.messageId === messageId),
    );
    expect(entry).toMatchObject({ url: `${rx.base}/dlq`, responseStatus: 500, responseBody: "down", body: "payload ✓" });
    expect(entry.responseHeader?.["X-Why"]).toEqual(["maintenance"]);
    expect(entry.dlqId).toBeTruthy();

    healthy = true;
    const retried = await client.dlq.retry(entry.dlqId);
    expect(retried.responses).toHaveLength(1);
    const newId = retried.responses[0]?.messageId;
    expect(newId).toMatch(/^msg_/);
    const ok = await waitUntil(() => rx.at("/dlq").find((d) => d.messageId === newId));
    expect(ok.text).toBe("payload ✓");
    expect((await client.dlq.listMessages()).messages.some((m) => m.dlqId === entry.dlqId)).toBe(false);

    healthy = false;
    const second = await client.publish({ url: `${rx.base}/dlq`, body: "again", retries: 0 });
    const e2 = await waitUntil(async () => (await client.dlq.listMessages()).messages.find((m) => m.messageId === second.messageId));
    expect(await client.dlq.delete(e2.dlqId)).toEqual({ deleted: 1 });
    expect((await client.dlq.listMessages()).messages.some((m) => m.dlqId === e2.dlqId)).toBe(false);
  });

  it("bulk retry by ids answers {responses:[{messageId}]}", async () => {
    rx.on("/dlq-bulk", (_d, n) => (n < 2 ? { status: 500 } : { status: 200 }));
    const a = await client.publish({ url: `${rx.base}/dlq-bulk`, body: "1", retries: 0 });
    const b = await client.publish({ url: `${rx.base}/dlq-bulk`, body: "2", retries: 0 });
    const ids = await waitUntil(async () => {
      const ms = (await client.dlq.listMessages()).messages.filter((m) => m.messageId === a.messageId || m.messageId === b.messageId);
      return ms.length === 2 && ms.map((m) => m.dlqId);
    });
    const res = await client.dlq.retry(ids);
    expect(res.responses.map((r) => typeof r.messageId)).toEqual(["string", "string"]);
    await rx.waitFor("/dlq-bulk", 4);
  });
});
