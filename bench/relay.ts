/**
 * The relay's own cost: enqueue latency through celeriac vs publishing the same message straight
 * to the broker; Redis and QStash round trips per enqueue and per delivery (counted by proxies);
 * CPU time per enqueue and per delivery in celeriac's own code (I/O answered by a stub).
 *   node bench/relay.ts [--quick] [--json out.json]
 * Loopback only; every loop is bounded in count and time.
 */
import { createHash } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Client } from "@upstash/qstash";
import { type Broker, startBroker } from "../dev/broker/index.ts";
import { signDelivery } from "../dev/broker/signing.ts";
import { type MailSink, startMailSink } from "../dev/mail-sink.ts";
import { type RedisBridge, startRedisBridge } from "../dev/redis-bridge.ts";
import { DEV_API_KEY, stackEnv } from "../dev/stack.ts";
import { createApp } from "../src/app.ts";
import { newTaskId } from "../src/ids.ts";
import { serveNode } from "../src/node.ts";
import { CLAIM, CREATE, LIST, TRANSITION } from "../src/store/scripts.ts";
import {
  BENCH_DB,
  benchRedis,
  benchRedisUrl,
  benchStack,
  checkBenchDb,
  cpuSince,
  cpuTimes,
  deleteKeys,
  emit,
  int,
  ms,
  note,
  QUICK,
  quietly,
  ratio,
  type SectionResult,
  sleep,
  startProvider,
  summary,
  table,
} from "./lib.ts";

const LATENCY_ITERATIONS = QUICK ? 100 : 400;
const COUNT_TASKS = 50;
const CPU_ITERATIONS = QUICK ? 500 : 3000;
const CPU_BATCHES = QUICK ? 10 : 40;
const headers = { authorization: `Bearer ${DEV_API_KEY}`, "content-type": "application/json" };
/** Far enough ahead that nothing is delivered while latency is measured. */
const LATER_S = 3600;
const SCRIPT_NAMES = new Map(
  Object.entries({ create: CREATE, claim: CLAIM, transition: TRANSITION, list: LIST }).map(([name, src]) => [
    createHash("sha1").update(src).digest("hex"),
    name,
  ]),
);

// ---------------------------------------------------------------------------------------------
// A. Latency: celeriac (workerd) vs the official Client straight to the broker, alternating.

async function latency(runtime: "workerd-serve" | "workerd") {
  const stack = await benchStack(runtime);
  try {
    const client = new Client({ baseUrl: stack.broker.url, token: stack.broker.token, retry: false, enableTelemetry: false });
    const app = createApp();
    const env = { ...stack.env };
    const payload = { url: "http://127.0.0.1:9/n/bench", method: "POST", body: { json: { order: 1 } } };
    const viaWorker = async () => {
      const r = await fetch(`${stack.worker.url}/v1/tasks/webhook`, {
        method: "POST",
        headers,
        body: JSON.stringify({ payload, delay: LATER_S }),
      });
      await r.arrayBuffer();
      if (r.status !== 202) throw new Error(`[celeriac] bench: worker answered ${r.status}`);
    };
    const inProcess = async () => {
      const r = await app.request("/v1/tasks/webhook", { method: "POST", headers, body: JSON.stringify({ payload, delay: LATER_S }) }, env);
      await r.arrayBuffer();
      if (r.status !== 202) throw new Error(`[celeriac] bench: in-process app answered ${r.status}`);
    };
    // The same request celeriac's src/queue.ts makes for this task.
    const direct = async () => {
      const now = Date.now();
      const runAt = now + LATER_S * 1000;
      await client.publishJSON({
        url: `${stack.env.CELERIAC_PUBLIC_URL}/qstash/deliver`,
        body: {
          v: 1,
          id: newTaskId(now),
          task: "webhook",
          payload,
          options: { retries: 5, timeout: 30, resultTtl: 604800 },
          createdAt: now,
          runAt,
        },
        retries: 5,
        timeout: 40,
        failureCallback: `${stack.env.CELERIAC_PUBLIC_URL}/qstash/failure`,
        label: "bench",
        notBefore: Math.ceil(runAt / 1000),
      });
    };
    const ways = { worker: viaWorker, inProcess, direct };
    let c0: ReturnType<typeof cpuTimes> | undefined;
    const lat: Record<keyof typeof ways, number[]> = { worker: [], inProcess: [], direct: [] };
    await quietly(async () => {
      for (let i = 0; i < 30; i++) for (const f of Object.values(ways)) await f();
      const names = Object.keys(ways) as (keyof typeof ways)[];
      c0 = cpuTimes();
      for (let i = 0; i < LATENCY_ITERATIONS; i++) {
        // Rotate who goes first, so none always follows another's after-effects.
        for (let j = 0; j < names.length; j++) {
          const name = names[(i + j) % names.length]!;
          const s = performance.now();
          await ways[name]();
          lat[name].push(performance.now() - s);
        }
      }
    });
    const used = cpuSince(c0!);
    // Control: a request that does no work in celeriac (an unknown path: Hono's 404), same workerd.
    const c1 = cpuTimes();
    for (let i = 0; i < LATENCY_ITERATIONS; i++) {
      const r = await fetch(`${stack.worker.url}/bench-nothing-here`);
      await r.arrayBuffer();
    }
    const idle = cpuSince(c1);
    return {
      worker: summary(lat.worker),
      inProcess: summary(lat.inProcess),
      direct: summary(lat.direct),
      // Only way A reaches workerd; the others leave it idle, so this is per request to it.
      workerdCpu: used.workerd / LATENCY_ITERATIONS,
      wranglerCpu: (used.children - used.workerd) / LATENCY_ITERATIONS,
      workerdBaseline: idle.workerd / LATENCY_ITERATIONS,
    };
  } finally {
    await stack.close();
  }
}

// ---------------------------------------------------------------------------------------------
// B. Round trips, counted: the app in-process behind serveNode, counting proxies in front of the
// Upstash-REST bridge and the broker.

interface Counter {
  url: string;
  requests: Map<string, number>;
  commands: Map<string, number>;
  snapshot(): { requests: Record<string, number>; commands: Record<string, number> };
  close(): Promise<void>;
}

async function countingProxy(target: string, kind: "redis" | "qstash" | "app"): Promise<Counter> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const t = new URL(target);
  const c: Counter = {
    url: "",
    requests: new Map(),
    commands: new Map(),
    snapshot: () => ({ requests: Object.fromEntries(c.requests), commands: Object.fromEntries(c.commands) }),
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
        agent.destroy();
      }),
  };
  const bump = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (d: Buffer) => chunks.push(d));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const path = (req.url ?? "/").split("?")[0]!;
      bump(c.requests, `${req.method} ${path.replace(/^\/v2\/publish\/.*/, "/v2/publish/<url>")}`);
      if (kind === "redis" && body.length) {
        try {
          const parsed = JSON.parse(body.toString("utf8")) as unknown[];
          const cmds = (Array.isArray(parsed[0]) ? parsed : [parsed]) as string[][];
          for (const cmd of cmds) {
            const name = String(cmd[0]).toLowerCase();
            bump(c.commands, name === "evalsha" ? `evalsha(${SCRIPT_NAMES.get(String(cmd[1])) ?? "?"})` : name);
          }
        } catch {
          bump(c.commands, "unparsed");
        }
      }
      const fwd = http.request(
        { host: t.hostname, port: t.port, method: req.method, path: req.url, headers: { ...req.headers, host: t.host }, agent },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      fwd.on("error", () => res.writeHead(502).end());
      fwd.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  c.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return c;
}

type Snap = ReturnType<Counter["snapshot"]>;
const diff = (a: Snap, b: Snap) => {
  const d = (x: Record<string, number>, y: Record<string, number>) =>
    Object.fromEntries(
      Object.entries(y)
        .map(([k, v]) => [k, v - (x[k] ?? 0)])
        .filter(([, v]) => (v as number) > 0),
    );
  return { requests: d(a.requests, b.requests), commands: d(a.commands, b.commands) };
};
const total = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);

async function roundTrips() {
  // The stand-ins alone (the app runs in this process, behind the proxies).
  const [bridge, sink, broker] = await Promise.all([
    startRedisBridge({ port: 0, backend: "redis", redisUrl: benchRedisUrl() }),
    startMailSink({ port: 0, rateLimit: 0 }),
    startBroker({ port: 0, timeScale: 1, log: false }),
  ]);
  const stack = { bridge, sink, broker, close: () => Promise.allSettled([broker.close(), sink.close(), bridge.close()]) };
  const provider = await startProvider(0);
  const redis = await countingProxy(stack.bridge.url, "redis");
  const qstash = await countingProxy(stack.broker.url, "qstash");
  let appEnv: Record<string, string> = {};
  const served = await serveNode({ port: 0, env: () => appEnv });
  const appProxy = await countingProxy(served.url, "app");
  appEnv = {
    ...stackEnv(stack, appProxy.url, { CELERIAC_WEBHOOK_ALLOW_HOSTS: "127.0.0.1" }),
    QSTASH_URL: qstash.url,
    UPSTASH_REDIS_REST_URL: redis.url,
  };
  const snap = () => ({ redis: redis.snapshot(), qstash: qstash.snapshot(), app: appProxy.snapshot() });
  const delta = (a: ReturnType<typeof snap>, b: ReturnType<typeof snap>) => ({
    redis: diff(a.redis, b.redis),
    qstash: diff(a.qstash, b.qstash),
    app: diff(a.app, b.app),
  });
  const enqueue = async (ids: string[], delay: number, batch: boolean) => {
    const item = (id: string) => ({ payload: { url: `${provider.url}/n/${id}`, method: "POST", body: { json: { id } } }, delay });
    if (batch) {
      const r = await fetch(`${appProxy.url}/v1/tasks`, {
        method: "POST",
        headers,
        body: JSON.stringify({ tasks: ids.map((id) => ({ task: "webhook", ...item(id) })) }),
      });
      if (r.status !== 202) throw new Error(`[celeriac] bench: batch answered ${r.status}: ${await r.text()}`);
      await r.arrayBuffer();
      return;
    }
    for (const id of ids) {
      const r = await fetch(`${appProxy.url}/v1/tasks/webhook`, { method: "POST", headers, body: JSON.stringify(item(id)) });
      if (r.status !== 202) throw new Error(`[celeriac] bench: enqueue answered ${r.status}: ${await r.text()}`);
      await r.arrayBuffer();
    }
  };
  /** Waits until every id reached the provider and the proxies saw nothing for a while. */
  const settle = async (ids: string[]) => {
    await provider.waitFor(ids, 60_000);
    let last = -1;
    for (let i = 0; i < 100; i++) {
      const now = total(redis.snapshot().requests) + total(appProxy.snapshot().requests);
      if (now === last) break;
      last = now;
      await sleep(300);
    }
  };
  try {
    return await quietly(async () => {
      // Cold: the first enqueue and delivery of this process (a fresh isolate's first calls).
      let a = snap();
      await enqueue(["cold"], 2, false);
      let b = snap();
      const coldEnqueue = delta(a, b);
      await settle(["cold"]);
      const coldDelivery = delta(b, snap());

      // Steady state: single enqueues, due a few seconds later so the phases do not overlap.
      const ids = Array.from({ length: COUNT_TASKS }, (_, i) => `single-${i}`);
      a = snap();
      await enqueue(ids, 5, false);
      b = snap();
      const single = delta(a, b);
      await settle(ids);
      const deliveries = delta(b, snap());

      const batchIds = Array.from({ length: COUNT_TASKS }, (_, i) => `batch-${i}`);
      a = snap();
      await enqueue(batchIds, 5, true);
      b = snap();
      const batch = delta(a, b);
      await settle(batchIds);
      const batchDeliveries = delta(b, snap());
      const dup = [...provider.receipts.values()].filter((n) => n > 1).length;

      // A Redis that has never seen the scripts (a fresh embedded in-memory bridge): NOSCRIPT.
      const memBridge = await startRedisBridge({ port: 0, backend: "memory" });
      const memRedis = await countingProxy(memBridge.url, "redis");
      const memEnv: Record<string, string> = { ...appEnv, UPSTASH_REDIS_REST_URL: memRedis.url, UPSTASH_REDIS_REST_TOKEN: memBridge.token };
      const memServed = await serveNode({ port: 0, env: () => memEnv });
      const memApp = await countingProxy(memServed.url, "app");
      memEnv.CELERIAC_PUBLIC_URL = memApp.url;
      try {
        const q0 = qstash.snapshot();
        const m0 = memRedis.snapshot();
        const r = await fetch(`${memApp.url}/v1/tasks/webhook`, {
          method: "POST",
          headers,
          body: JSON.stringify({ payload: { url: `${provider.url}/n/noscript`, method: "POST", body: { json: {} } }, delay: 2 }),
        });
        if (r.status !== 202) throw new Error(`[celeriac] bench: enqueue answered ${r.status}: ${await r.text()}`);
        const m1 = memRedis.snapshot();
        const q1 = qstash.snapshot();
        await provider.waitFor(["noscript"], 30_000);
        await sleep(500);
        const noscript = {
          enqueue: diff(m0, m1),
          delivery: diff(m1, memRedis.snapshot()),
          qstash: [total(diff(q0, q1).requests), total(diff(q1, qstash.snapshot()).requests)],
          app: total(memApp.snapshot().requests),
        };
        return { coldEnqueue, coldDelivery, single, deliveries, batch, batchDeliveries, duplicates: dup, noscript };
      } finally {
        await Promise.allSettled([memServed.close(), memApp.close(), memRedis.close()]);
        await memBridge.close();
      }
    });
  } finally {
    await Promise.allSettled([served.close(), redis.close(), qstash.close(), appProxy.close(), provider.close()]);
    await stack.close();
  }
}

// ---------------------------------------------------------------------------------------------
// C. CPU time in celeriac's own code: in-process, every fetch answered at once by a stub with
// canned QStash / Upstash replies (a fake, fine inside a benchmark: it removes I/O, not work).

const CANNED: Record<string, string[]> = { create: ["new"], claim: ["run", "1"], transition: ["ok", "running"] };

function stubFetch(): typeof fetch {
  let n = 0;
  return (async (input: RequestInfo | URL, init?: RequestInit) => {
    const req = input instanceof Request ? input : new Request(input, init);
    const url = new URL(req.url);
    const json = (body: unknown) => new Response(JSON.stringify(body), { status: 200, headers: { "content-type": "application/json" } });
    if (url.host === "qstash.stub") {
      if (url.pathname === "/v2/batch") {
        const items = (await req.json()) as unknown[];
        return json(items.map(() => ({ messageId: `msg_${++n}` })));
      }
      await req.arrayBuffer();
      return json({ messageId: `msg_${++n}` });
    }
    if (url.host === "redis.stub") {
      const cmds = (await req.json()) as string[][];
      return json(cmds.map((c) => ({ result: CANNED[SCRIPT_NAMES.get(String(c[1])) ?? ""] ?? ["?"] })));
    }
    if (url.host === "provider.stub") {
      await req.arrayBuffer();
      return new Response("sent", { status: 200, headers: { "content-type": "text/plain" } });
    }
    throw new Error(`[celeriac] bench: unexpected fetch to ${req.url}`);
  }) as typeof fetch;
}

function cpuMs(start: NodeJS.CpuUsage) {
  const u = process.cpuUsage(start);
  return (u.user + u.system) / 1000;
}

async function cpu() {
  const close = async () => {};
  const bridge: RedisBridge = { url: "http://redis.stub", token: "stub-token", backend: "memory", close };
  const sink = { url: "http://mail.stub", close } as unknown as MailSink;
  const broker: Broker = {
    url: "http://qstash.stub",
    token: "stub-token",
    currentSigningKey: "sig_current_bench",
    nextSigningKey: "sig_next_bench",
    close,
  };
  const env = stackEnv({ bridge, sink, broker }, "http://app.stub");
  const app = createApp();
  const realFetch = globalThis.fetch;
  globalThis.fetch = stubFetch();
  const payload = { url: "https://provider.stub/n/1", method: "POST", body: { json: { order: 1 } } };
  const enqueueBody = JSON.stringify({ payload });
  const batchBody = JSON.stringify({ tasks: Array.from({ length: 100 }, () => ({ task: "webhook", payload })) });
  const deliverUrl = "http://app.stub/qstash/deliver";
  const deliveries = (count: number) =>
    Array.from({ length: count }, () => {
      const now = Date.now();
      const body = JSON.stringify({
        v: 1,
        id: newTaskId(now),
        task: "webhook",
        payload,
        options: { retries: 5, timeout: 30, resultTtl: 604800 },
        createdAt: now,
        runAt: now,
      });
      return { body, signature: signDelivery(env.QSTASH_CURRENT_SIGNING_KEY, deliverUrl, Buffer.from(body)) };
    });
  const enqueueOnce = async () => {
    const r = await app.request("http://app.stub/v1/tasks/webhook", { method: "POST", headers, body: enqueueBody }, env);
    if (r.status !== 202) throw new Error(`[celeriac] bench: stubbed enqueue answered ${r.status}: ${await r.text()}`);
    await r.arrayBuffer();
  };
  const batchOnce = async () => {
    const r = await app.request("http://app.stub/v1/tasks", { method: "POST", headers, body: batchBody }, env);
    if (r.status !== 202) throw new Error(`[celeriac] bench: stubbed batch answered ${r.status}: ${await r.text()}`);
    await r.arrayBuffer();
  };
  const deliverOnce = async (d: { body: string; signature: string }, i: number) => {
    const r = await app.request(
      deliverUrl,
      {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "upstash-signature": d.signature,
          "upstash-message-id": `msg_${i}`,
          "upstash-retried": "0",
        },
        body: d.body,
      },
      env,
    );
    if (r.status !== 200) throw new Error(`[celeriac] bench: stubbed delivery answered ${r.status}: ${await r.text()}`);
    await r.arrayBuffer();
  };
  const measure = async (count: number, f: (i: number) => Promise<void>) => {
    const wall = performance.now();
    const c = process.cpuUsage();
    for (let i = 0; i < count; i++) await f(i);
    return { cpu: cpuMs(c) / count, wall: (performance.now() - wall) / count, count };
  };
  try {
    return await quietly(async () => {
      const warm = deliveries(300);
      for (let i = 0; i < 300; i++) await enqueueOnce();
      for (let i = 0; i < 10; i++) await batchOnce();
      for (let i = 0; i < warm.length; i++) await deliverOnce(warm[i]!, i);
      const ds = deliveries(CPU_ITERATIONS); // signed beforehand: signing is QStash's work, not ours
      type Pass = { cpu: number; wall: number; count: number };
      const out = { enqueue: [] as Pass[], batch: [] as Pass[], deliver: [] as Pass[] };
      // Three alternating passes each; the table shows the median pass.
      for (let pass = 0; pass < 3; pass++) {
        out.enqueue.push(await measure(Math.floor(CPU_ITERATIONS / 3), () => enqueueOnce()));
        out.batch.push(await measure(Math.max(1, Math.floor(CPU_BATCHES / 3)), () => batchOnce()));
        const slice = ds.slice((pass * CPU_ITERATIONS) / 3, ((pass + 1) * CPU_ITERATIONS) / 3);
        out.deliver.push(await measure(slice.length, (i) => deliverOnce(slice[i]!, i)));
      }
      const mid = (xs: Pass[]) => [...xs].sort((a, b) => a.cpu - b.cpu)[1]!;
      return { enqueue: mid(out.enqueue), batch: mid(out.batch), deliver: mid(out.deliver) };
    });
  } finally {
    globalThis.fetch = realFetch;
  }
}

// ---------------------------------------------------------------------------------------------

const show = (r: Record<string, number>) =>
  Object.entries(r)
    .sort()
    .map(([k, v]) => `${k} ×${v}`)
    .join(", ") || "none";
const per = (r: Record<string, number>, n: number) => {
  const t = total(r) / n;
  return Number.isInteger(t) ? String(t) : t.toFixed(2);
};

export async function runRelay(): Promise<SectionResult> {
  process.env.REDIS_URL = benchRedisUrl();
  const raw = benchRedis();
  await checkBenchDb(raw, ["celeriac:", "bull:celeriac-bench-"]);
  const started = performance.now();
  try {
    note("relay: latency, celeriac (workerd serve, then wrangler dev) vs the official Client straight to the broker");
    const lat = await latency("workerd-serve");
    const dev = await latency("workerd");
    note("relay: counting round trips (app in-process behind serveNode, counting proxies)");
    const rt = await roundTrips();
    note("relay: CPU time per request with I/O stubbed");
    const c = await cpu();
    const seconds = (performance.now() - started) / 1000;
    const N = COUNT_TASKS;
    const markdown = `## 3. The relay's own cost

### Enqueue latency: through celeriac vs straight to the broker

${LATENCY_ITERATIONS} sequential requests each, one caller, the three ways interleaved request by request
(rotating which goes first), after 30 warm-up rounds. Each enqueues the same \`webhook\` task due in
an hour (so no delivery runs meanwhile); the direct publish sends the very message and options
celeriac's \`src/queue.ts\` sends, with \`@upstash/qstash\`'s \`Client\` (\`retry: false\`), from the
bench process. celeriac additionally validates the payload and writes the Redis record (in
parallel with its publish).

${table(
  ["way", "p50", "p99", "max", "p50 ÷ direct", "p99 ÷ direct"],
  [
    latencyRow("A. celeriac in workerd (`workerd serve`, the deploy bundle), `POST /v1/tasks/webhook`", lat.worker, lat.direct),
    latencyRow("A′. celeriac in-process on Node (`app.request`)", lat.inProcess, lat.direct),
    latencyRow("B. `Client.publishJSON` straight to the broker", lat.direct, lat.direct),
    latencyRow("A (dev runtime). celeriac under `wrangler dev`, measured the same way in its own run", dev.worker, dev.direct),
    latencyRow("B (in that run). `Client.publishJSON` straight to the broker", dev.direct, dev.direct),
  ],
)}

Enqueue p50 above a direct publish: ${ms(lat.worker.p50 - lat.direct.p50)} in \`workerd serve\`, ${ms(dev.worker.p50 - dev.direct.p50)} under \`wrangler dev\`.

CPU of the Worker's processes while this ran (from /proc; only way A reaches them): in
\`workerd serve\`, workerd ${ms(lat.workerdCpu)} per enqueue; under \`wrangler dev\`, workerd
${ms(dev.workerdCpu)} and wrangler's Node process ${ms(dev.wranglerCpu)}; against ${ms(c.enqueue.cpu)} for the
same request in-process on Node with I/O stubbed (below). As a control, a request that does nothing
in celeriac (an unknown path, answered by Hono's 404 handler) costs workerd ${ms(lat.workerdBaseline)} of
CPU in \`workerd serve\` and ${ms(dev.workerdBaseline)} under \`wrangler dev\`.

### Round trips, counted

The app runs in-process (\`src/node.ts\` \`serveNode\`) with counting HTTP proxies in front of the
Upstash-REST bridge, the broker and the app itself; the \`webhook\` task calls a provider that answers at
once. Tasks are enqueued due 5 s later, so enqueue and delivery phases do not overlap. Counts are
HTTP requests (one request = one round trip; a pipeline is one request), with the Redis commands
inside them.

${table(
  ["phase", "Redis round trips", "Redis commands", "QStash round trips", "deliveries to the app"],
  [
    [
      "first enqueue of a fresh process (1 task)",
      per(rt.coldEnqueue.redis.requests, 1),
      show(rt.coldEnqueue.redis.commands),
      per(rt.coldEnqueue.qstash.requests, 1),
      "–",
    ],
    [
      "its delivery",
      per(rt.coldDelivery.redis.requests, 1),
      show(rt.coldDelivery.redis.commands),
      per(rt.coldDelivery.qstash.requests, 1),
      per(rt.coldDelivery.app.requests, 1),
    ],
    [
      `steady state: per enqueue (${N} single \`POST /v1/tasks/webhook\`)`,
      per(rt.single.redis.requests, N),
      show(rt.single.redis.commands),
      per(rt.single.qstash.requests, N),
      "–",
    ],
    [
      `steady state: per delivery (${N})`,
      per(rt.deliveries.redis.requests, N),
      show(rt.deliveries.redis.commands),
      per(rt.deliveries.qstash.requests, N),
      per(rt.deliveries.app.requests, N),
    ],
    [
      "first enqueue against a Redis without the scripts (fresh embedded bridge)",
      per(rt.noscript.enqueue.requests, 1),
      show(rt.noscript.enqueue.commands),
      String(rt.noscript.qstash[0]),
      "–",
    ],
    [
      "its delivery",
      per(rt.noscript.delivery.requests, 1),
      show(rt.noscript.delivery.commands),
      String(rt.noscript.qstash[1]),
      String(rt.noscript.app - 1),
    ],
    [
      `one batch of ${N} (\`POST /v1/tasks\`)`,
      per(rt.batch.redis.requests, 1),
      show(rt.batch.redis.commands),
      per(rt.batch.qstash.requests, 1),
      "–",
    ],
    [
      `per delivery of the batch's tasks (${N})`,
      per(rt.batchDeliveries.redis.requests, N),
      show(rt.batchDeliveries.redis.commands),
      per(rt.batchDeliveries.qstash.requests, N),
      per(rt.batchDeliveries.app.requests, N),
    ],
  ],
)}

Commands are totals over the phase. QStash paths seen: enqueue ${show(rt.single.qstash.requests)}; batch ${show(rt.batch.qstash.requests)}.
The task's own work (the webhook call) is one request to the provider per delivery and is not in
these columns. The Lua scripts run by SHA; a Redis that lacks one answers NOSCRIPT and the store
adds one \`SCRIPT LOAD\` and a retry (two more round trips, once per script per Redis restart or
flush). The shared dev Redis already held the scripts, so its "first" rows show none; the row
against a fresh embedded Redis shows the NOSCRIPT path (each of the three scripts loads once). The
steady-state rows are what every request costs. Duplicate receipts at the provider: ${rt.duplicates}.

### CPU time in celeriac's own code

In-process (\`createApp().request\`), every \`fetch\` answered at once by a stub with canned
QStash/Upstash replies (a fake, and fine inside a benchmark: it removes the waiting, not the work:
routing, valibot, JSON, the Upstash and QStash clients, signature verification with
\`crypto.subtle\`, the webhook task's Standard Webhooks signature). \`process.cpuUsage()\` (user +
system, GC included) over ${int(Math.floor(CPU_ITERATIONS / 3))} sequential requests per pass (${Math.max(1, Math.floor(CPU_BATCHES / 3))} for batches), median of 3
alternating passes, after warm-up. Log lines are discarded. Workers' free plan allows 10 ms of CPU
per request (paid: 30 s by default).

${table(
  ["request", "CPU per request", "per task", "wall per request", "share of the free plan's 10 ms"],
  [
    [
      "enqueue, `POST /v1/tasks/webhook`",
      ms(c.enqueue.cpu),
      ms(c.enqueue.cpu),
      ms(c.enqueue.wall),
      `${((c.enqueue.cpu / 10) * 100).toFixed(0)} %`,
    ],
    [
      "batch of 100, `POST /v1/tasks`",
      ms(c.batch.cpu),
      ms(c.batch.cpu / 100),
      ms(c.batch.wall),
      `${((c.batch.cpu / 10) * 100).toFixed(0)} %`,
    ],
    [
      "delivery, `POST /qstash/deliver` (webhook task)",
      ms(c.deliver.cpu),
      ms(c.deliver.cpu),
      ms(c.deliver.wall),
      `${((c.deliver.cpu / 10) * 100).toFixed(0)} %`,
    ],
  ],
)}

This is V8 on Node (JIT warm); workerd runs the same V8 but a cold isolate's first requests cost more
than these warm figures. Section wall time: ${seconds.toFixed(0)} s.`;
    return { id: "relay", title: "The relay's own cost", markdown, data: { lat, rt, cpu: c } };
  } finally {
    const removed = await deleteKeys(raw, "celeriac:*");
    note(`relay: removed ${removed} keys from Redis db ${BENCH_DB}`);
    raw.disconnect();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  await emit(await runRelay());
  process.exit(0);
}

type Latency = ReturnType<typeof summary>;
/** One row of the enqueue-latency table: a way's p50/p99/max and its ratios to the direct publish. */
function latencyRow(way: string, l: Latency, direct: Latency): string[] {
  const base = l === direct;
  return [way, ms(l.p50), ms(l.p99), ms(l.max), base ? "1×" : ratio(l.p50, direct.p50), base ? "1×" : ratio(l.p99, direct.p99)];
}
