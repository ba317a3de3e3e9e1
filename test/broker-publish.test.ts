/** Broker conformance: publishing, delivered headers and bytes, signatures, delays, batch, dedup, errors. */
import { createHash } from "node:crypto";
import { type Client, Receiver } from "@upstash/qstash";
import { describe, expect, it } from "vitest";
import type { Broker } from "../dev/broker/index.ts";
import { sleep, type TestReceiver, useBroker } from "./helpers/broker-receiver.ts";

let broker: Broker;
let rx: TestReceiver;
let client: Client;
useBroker((f) => ({ broker, rx, client } = f));

const raw = (path: string, init: RequestInit = {}) =>
  fetch(`${broker.url}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${broker.token}`, ...(init.headers as Record<string, string>) },
  });

describe("publish and deliver", () => {
  it("delivers body bytes, content type, forwarded headers and QStash headers, signed", async () => {
    const body = JSON.stringify({ text: "héllo ✓ 🚀 中文" });
    const res = await client.publish({
      url: `${rx.base}/basic?x=1&y=two`,
      body,
      method: "PUT",
      headers: { "Content-Type": "application/json", "X-Custom-Thing": "v1" },
    });
    expect(res.messageId).toMatch(/^msg_/);
    expect(res.url).toBe(`${rx.base}/basic?x=1&y=two`);
    const [d] = await rx.waitFor("/basic", 1);
    expect(d?.verifyError).toBeUndefined();
    expect(d?.verified).toBe(true);
    expect(d?.method).toBe("PUT");
    expect(d?.url).toBe(`${rx.base}/basic?x=1&y=two`);
    expect(d?.text).toBe(body);
    expect(d?.headers["content-type"]).toBe("application/json");
    expect(d?.headers["x-custom-thing"]).toBe("v1");
    expect(d?.headers["user-agent"]).toBe("Upstash-QStash");
    expect(d?.headers["upstash-message-id"]).toBe(res.messageId);
    expect(d?.headers["upstash-retried"]).toBe("0");
    expect(Object.keys(d?.headers ?? {}).some((h) => h.startsWith("upstash-forward-") || h.startsWith("upstash-telemetry"))).toBe(false);
  });

  it("signs a JWT with the documented claims", async () => {
    const { messageId } = await client.publish({ url: `${rx.base}/claims`, body: "abc" });
    const [d] = await rx.waitFor("/claims", 1);
    const [header, payload] = (d?.signature ?? "").split(".");
    expect(JSON.parse(Buffer.from(header ?? "", "base64url").toString())).toMatchObject({ alg: "HS256", typ: "JWT" });
    const claims = JSON.parse(Buffer.from(payload ?? "", "base64url").toString());
    expect(claims.iss).toBe("Upstash");
    expect(claims.sub).toBe(`${rx.base}/claims`);
    expect(claims.exp - claims.iat).toBe(300);
    expect(claims.nbf).toBeTypeOf("number");
    expect(claims.jti).toBeTypeOf("string");
    expect(claims.body.replace(/=+$/, "")).toBe(createHash("sha256").update("abc").digest("base64url"));
    expect(d?.messageId).toBe(messageId);
  });

  it("rejects tampered deliveries: changed body, wrong url, wrong keys", async () => {
    await client.publish({ url: `${rx.base}/tamper`, body: "original" });
    const [d] = await rx.waitFor("/tamper", 1);
    const receiver = new Receiver({ currentSigningKey: broker.currentSigningKey, nextSigningKey: broker.nextSigningKey });
    const signature = d?.signature ?? "";
    await expect(receiver.verify({ signature, body: "original", url: `${rx.base}/tamper` })).resolves.toBe(true);
    await expect(receiver.verify({ signature, body: "original!", url: `${rx.base}/tamper` })).rejects.toThrow();
    await expect(receiver.verify({ signature, body: "original", url: `${rx.base}/other` })).rejects.toThrow();
    const wrong = new Receiver({ currentSigningKey: "sig_wrong", nextSigningKey: "sig_wrong2" });
    await expect(wrong.verify({ signature, body: "original" })).rejects.toThrow();
  });

  it("keeps non-UTF-8 bodies byte for byte", async () => {
    const bytes = Buffer.from([0, 255, 128, 10, 0xc3, 0x28, 1, 2]);
    const res = await raw(`/v2/publish/${rx.base}/binary`, {
      method: "POST",
      headers: { "content-type": "application/octet-stream" },
      body: bytes,
    });
    expect(res.status).toBeLessThan(300);
    const [d] = await rx.waitFor("/binary", 1);
    expect(d?.body.equals(bytes)).toBe(true);
    const claims = JSON.parse(Buffer.from(d?.signature.split(".")[1] ?? "", "base64url").toString());
    expect(claims.body.replace(/=+$/, "")).toBe(createHash("sha256").update(bytes).digest("base64url"));
  });

  it("Upstash-Header-Forward: true forwards plain headers, never Authorization or Upstash-*", async () => {
    const res = await raw(`/v2/publish/${rx.base}/header-forward`, {
      method: "POST",
      headers: { "upstash-header-forward": "true", "x-plain": "p", "upstash-retries": "0", "content-type": "text/plain" },
      body: "h",
    });
    expect(res.status).toBe(201);
    const [d] = await rx.waitFor("/header-forward", 1);
    expect(d?.headers["x-plain"]).toBe("p");
    expect(d?.headers.authorization).toBeUndefined();
    expect(d?.headers["upstash-retries"]).toBeUndefined();
    expect(d?.headers["upstash-header-forward"]).toBeUndefined();
  });

  it("splits QStash's own query params off the destination and repairs https:/", async () => {
    const res = await fetch(
      `${broker.url}/v2/publish/${rx.base.replace("http://", "http:/")}/query?a=1&b=x%20y&qstash_token=${encodeURIComponent(broker.token)}&upstash-retries=0`,
      { method: "POST", body: "q" },
    );
    expect(res.status).toBe(201);
    const [d] = await rx.waitFor("/query", 1);
    expect(d?.url).toBe(`${rx.base}/query?a=1&b=x%20y`);
    expect(d?.verified).toBe(true);
  });

  it("honours delay, and not-before over delay (both scaled)", async () => {
    const t0 = performance.now();
    await client.publish({ url: `${rx.base}/delay`, body: "d", delay: 150 });
    await client.publish({
      url: `${rx.base}/notbefore`,
      body: "n",
      delay: 100_000,
      notBefore: Math.floor(Date.now() / 1000) + 60,
    });
    await raw(`/v2/publish/${rx.base}/compound`, { method: "POST", headers: { "upstash-delay": "1m0.5s" }, body: "c" });
    const [d] = await rx.waitFor("/delay", 1);
    expect((d?.at ?? 0) - t0).toBeGreaterThanOrEqual(145);
    const [c] = await rx.waitFor("/compound", 1);
    expect((c?.at ?? 0) - t0).toBeGreaterThanOrEqual(55);
    const [n] = await rx.waitFor("/notbefore", 1, 3000);
    // 60 s (minus up to 1 s of rounding) scaled to ~60 ms; the 100 000 s delay would be 100 s.
    expect((n?.at ?? 0) - t0).toBeGreaterThanOrEqual(45);
    expect((n?.at ?? 0) - t0).toBeLessThan(2000);
  });
});

describe("batch", () => {
  it("publishes each item; one bad item does not sink the others; telemetry is not forwarded", async () => {
    const res = await client.batch([
      { url: `${rx.base}/batch-a`, body: "a", headers: { "X-Item": "a" } },
      { url: "ftp://nowhere.example/x", body: "bad" },
      { url: `${rx.base}/batch-b`, body: "b", delay: 10 },
    ]);
    expect(res).toHaveLength(3);
    const ids = res as unknown as { messageId?: string }[];
    expect(ids[0]?.messageId).toMatch(/^msg_/);
    expect((res[1] as unknown as { error: string }).error).toContain("invalid destination url");
    expect(ids[2]?.messageId).toMatch(/^msg_/);
    const [a] = await rx.waitFor("/batch-a", 1);
    const [b] = await rx.waitFor("/batch-b", 1);
    expect(a?.text).toBe("a");
    expect(a?.headers["x-item"]).toBe("a");
    expect(a?.verified && b?.verified).toBe(true);
    expect(Object.keys(a?.headers ?? {}).filter((h) => h.includes("telemetry"))).toEqual([]);
  });
});

describe("deduplication", () => {
  it("by id: 202, same messageId, deduplicated true, delivered once", async () => {
    const first = await client.publish({ url: `${rx.base}/dedup-id`, body: "1", deduplicationId: "order-42" });
    const dup = await raw(`/v2/publish/${rx.base}/dedup-id`, {
      method: "POST",
      headers: { "upstash-deduplication-id": "order-42" },
      body: "2",
    });
    expect(dup.status).toBe(202);
    expect(await dup.json()).toMatchObject({ messageId: first.messageId, deduplicated: true });
    const viaClient = await client.publish({ url: `${rx.base}/dedup-id`, body: "3", deduplicationId: "order-42" });
    expect(viaClient).toMatchObject({ messageId: first.messageId, deduplicated: true });
    await rx.waitFor("/dedup-id", 1);
    await sleep(50);
    expect(rx.at("/dedup-id")).toHaveLength(1);
  });

  it("content based: same destination, body, type and headers dedupe; a different body does not", async () => {
    const opts = { url: `${rx.base}/dedup-content`, body: "same", contentBasedDeduplication: true };
    const a = await client.publish(opts);
    const b = await client.publish(opts);
    const c = await client.publish({ ...opts, body: "different" });
    expect(b).toMatchObject({ messageId: a.messageId, deduplicated: true });
    expect(c.messageId).not.toBe(a.messageId);
    expect(c.deduplicated).toBeFalsy();
    await rx.waitFor("/dedup-content", 2);
    await sleep(50);
    expect(rx.at("/dedup-content")).toHaveLength(2);
  });
});

describe("errors and auth", () => {
  it("401 without a token, keys are exactly the dev keys", async () => {
    const res = await fetch(`${broker.url}/v2/keys`);
    expect(res.status).toBe(401);
    expect(await res.json()).toHaveProperty("error");
    const keys = await raw("/v2/keys");
    expect(await keys.json()).toEqual({ current: broker.currentSigningKey, next: broker.nextSigningKey });
    const viaQuery = await fetch(`${broker.url}/v2/keys?qstash_token=${encodeURIComponent(broker.token)}`);
    expect(viaQuery.status).toBe(200);
  });

  it("bad destinations get QStash's error text", async () => {
    await expect(client.publish({ url: "ftp://x.example/a", body: "x" })).rejects.toThrow(
      "invalid destination url: endpoint has invalid scheme, add http:// or https://",
    );
    const group = await raw("/v2/publish/my-group", { method: "POST", body: "x" });
    expect([400, 404]).toContain(group.status);
    expect((await group.json()).error).toMatch(/url group/);
  });

  it("flow-control values parse with or without spaces; bad ones get the exact error", async () => {
    for (const value of ["parallelism=2,rate=3,period=1m", "parallelism=2, rate=3, period=1m", "rate=5"]) {
      const res = await raw(`/v2/publish/${rx.base}/fc-parse`, {
        method: "POST",
        headers: { "upstash-flow-control-key": "k", "upstash-flow-control-value": value },
        body: "x",
      });
      expect(res.status, value).toBe(201);
    }
    for (const value of ["parallelism=abc", "speed=3", "period=1m", ""]) {
      const res = await raw(`/v2/publish/${rx.base}/fc-parse`, {
        method: "POST",
        headers: { "upstash-flow-control-key": "k", "upstash-flow-control-value": value },
        body: "x",
      });
      expect(res.status, value).toBe(400);
      expect(await res.json()).toEqual({
        error: "Upstash-Flow-Control-Value should be either rate=X or parallelism=Y, or both as comma-separated values",
      });
    }
  });

  it("rejects a malformed retry-delay expression", async () => {
    await expect(client.publish({ url: `${rx.base}/x`, body: "x", retryDelay: "pow(2, retried" })).rejects.toThrow(/Retry-Delay/);
    await expect(client.publish({ url: `${rx.base}/x`, body: "x", retryDelay: "process.exit(1)" })).rejects.toThrow();
  });
});
