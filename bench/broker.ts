/**
 * Local broker benchmark: publish latency through the official Client, and delivery throughput.
 *   node bench/broker.ts [publishes=1000] [messages=5000]
 * Loopback only; bounded loops.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import { Client } from "@upstash/qstash";
import { startBroker } from "../dev/broker/index.ts";

const PUBLISHES = Number(process.argv[2] ?? 1000);
const MESSAGES = Number(process.argv[3] ?? 5000);
const BATCH = 100;
const CONCURRENT_BATCHES = 5;

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;

let delivered = 0;
let onDelivered: (() => void) | undefined;
const endpoint = http.createServer((req, res) => {
  req.resume();
  req.on("end", () => {
    delivered++;
    onDelivered?.();
    res.end("ok");
  });
});
await new Promise<void>((r) => endpoint.listen(0, "127.0.0.1", r));
const target = `http://127.0.0.1:${(endpoint.address() as AddressInfo).port}/bench`;

const broker = await startBroker({ port: 0, log: false });
const client = new Client({ baseUrl: broker.url, token: broker.token, retry: false, enableTelemetry: false });

// Warm-up: sockets, JIT.
for (let i = 0; i < 50; i++) await client.publish({ url: target, body: "warm" });

const latencies: number[] = [];
const t0 = performance.now();
for (let i = 0; i < PUBLISHES; i++) {
  const s = performance.now();
  await client.publish({ url: target, body: JSON.stringify({ i }) });
  latencies.push(performance.now() - s);
}
const publishWall = performance.now() - t0;
latencies.sort((a, b) => a - b);

const already = PUBLISHES + 50;
await new Promise<void>((resolve) => {
  onDelivered = () => delivered >= already && resolve();
  onDelivered();
});

const start = performance.now();
const allDelivered = new Promise<void>((resolve) => {
  onDelivered = () => delivered >= already + MESSAGES && resolve();
});
let published = 0;
const nextBatch = async (): Promise<void> => {
  while (published < MESSAGES) {
    const n = Math.min(BATCH, MESSAGES - published);
    published += n;
    await client.batch(Array.from({ length: n }, (_, i) => ({ url: target, body: JSON.stringify({ i }) })));
  }
};
await Promise.all(Array.from({ length: CONCURRENT_BATCHES }, nextBatch));
const publishedAt = performance.now() - start;
await allDelivered;
const total = performance.now() - start;

await broker.close();
await new Promise<void>((r) => {
  endpoint.close(() => r());
  endpoint.closeAllConnections();
});

const f = (n: number, d = 2) => n.toFixed(d);
console.log(`
### celeriac local QStash broker

Machine: ${os.cpus().length} cores (${os.cpus()[0]?.model.trim() ?? "unknown cpu"}), Node ${process.version}, ${os.platform()} ${os.arch()}

| measure | value |
|---|---|
| sequential publishes (official Client) | ${PUBLISHES} |
| publish latency p50 | ${f(pct(latencies, 50))} ms |
| publish latency p99 | ${f(pct(latencies, 99))} ms |
| publish latency max | ${f(latencies[latencies.length - 1] ?? 0)} ms |
| sequential publish rate | ${f(PUBLISHES / (publishWall / 1000), 0)} msg/s |
| throughput run: messages (batches of ${BATCH}, ${CONCURRENT_BATCHES} in parallel) | ${MESSAGES} |
| all published after | ${f(publishedAt, 0)} ms |
| all delivered after | ${f(total, 0)} ms |
| delivery throughput | ${f(MESSAGES / (total / 1000), 0)} msg/s |
`);
