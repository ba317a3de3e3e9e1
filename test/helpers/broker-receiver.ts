/**
 * A local destination for broker tests: a node:http server on port 0 that verifies every delivery
 * with the official Receiver (url given, so `sub` is checked) and records it.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Client, Receiver } from "@upstash/qstash";
import { afterAll, beforeAll } from "vitest";
import { type Broker, startBroker } from "../../dev/broker/index.ts";

export interface Delivery {
  path: string;
  method: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
  signature: string;
  url: string;
  verified: boolean;
  verifyError?: string;
  at: number;
  messageId: string;
  retried: number;
}

export interface Reply {
  status?: number;
  headers?: Record<string, string>;
  body?: string;
  delayMs?: number;
}

export type Behaviour = (d: Delivery, nth: number) => Reply | undefined;

export interface TestReceiver {
  base: string;
  deliveries: Delivery[];
  at(path: string): Delivery[];
  /** Reply behaviour for requests whose path (without query) equals `path`. */
  on(path: string, behaviour: Behaviour): void;
  maxConcurrent(path: string): number;
  waitFor(path: string, count: number, timeoutMs?: number): Promise<Delivery[]>;
  close(): Promise<void>;
}

export async function waitUntil<T>(
  fn: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 5000,
  what = "condition",
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startReceiver(keys: { currentSigningKey: string; nextSigningKey: string }): Promise<TestReceiver> {
  const receiver = new Receiver(keys);
  const deliveries: Delivery[] = [];
  const behaviours = new Map<string, Behaviour>();
  const active = new Map<string, number>();
  const peak = new Map<string, number>();
  const counts = new Map<string, number>();
  let base = "";
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", async () => {
      const path = (req.url ?? "/").split("?")[0] as string;
      const now = active.get(path) ?? 0;
      active.set(path, now + 1);
      peak.set(path, Math.max(peak.get(path) ?? 0, now + 1));
      const body = Buffer.concat(chunks);
      const url = `${base}${req.url ?? "/"}`;
      const signature = String(req.headers["upstash-signature"] ?? "");
      const d: Delivery = {
        path,
        method: req.method ?? "",
        headers: req.headers,
        body,
        text: body.toString("utf8"),
        signature,
        url,
        verified: false,
        at: performance.now(),
        messageId: String(req.headers["upstash-message-id"] ?? ""),
        retried: Number(req.headers["upstash-retried"] ?? -1),
      };
      try {
        await receiver.verify({ signature, body: d.text, url });
        d.verified = true;
      } catch (e) {
        d.verifyError = (e as Error).message;
      }
      const nth = counts.get(path) ?? 0;
      counts.set(path, nth + 1);
      const reply = behaviours.get(path)?.(d, nth) ?? {};
      deliveries.push(d);
      if (reply.delayMs) await sleep(reply.delayMs);
      active.set(path, (active.get(path) ?? 1) - 1);
      if (res.destroyed) return;
      res.writeHead(reply.status ?? 200, reply.headers ?? {});
      res.end(reply.body ?? "ok");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const at = (path: string) => deliveries.filter((d) => d.path === path);
  return {
    base,
    deliveries,
    at,
    on: (path, b) => void behaviours.set(path, b),
    maxConcurrent: (path) => peak.get(path) ?? 0,
    waitFor: (path, count, timeoutMs = 5000) =>
      waitUntil(() => at(path).length >= count && at(path), timeoutMs, `${count} deliveries at ${path}`),
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

/** What {@link useBroker} gives a test file. */
export interface BrokerFixture {
  broker: Broker;
  rx: TestReceiver;
  client: Client;
}

/**
 * Starts a broker at a small time scale, a verifying receiver and an official client before the
 * file's tests, and stops them after; `ready` receives them.
 */
export function useBroker(ready: (f: BrokerFixture) => void, timeScale = 0.001): void {
  let f: BrokerFixture | undefined;
  beforeAll(async () => {
    const broker = await startBroker({ port: 0, timeScale });
    const rx = await startReceiver(broker);
    f = { broker, rx, client: new Client({ baseUrl: broker.url, token: broker.token, retry: false }) };
    ready(f);
  });
  afterAll(async () => {
    await f?.broker.close();
    await f?.rx.close();
  });
}
