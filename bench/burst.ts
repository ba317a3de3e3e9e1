/**
 * The noon burst: N orders arrive at once, each must send one notification through a provider
 * that takes L to answer. (a) inline, one after another; (b) celeriac in workerd through the local
 * broker (time scale 1); (c) BullMQ queue + worker on the same Redis.
 *   node bench/burst.ts [--quick] [--json out.json]
 * Loopback only; every loop is bounded in count and time.
 */
import { readFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Queue, Worker } from "bullmq";
import { DEV_API_KEY, type Stack } from "../dev/stack.ts";
import {
  BENCH_DB,
  benchRedis,
  benchRedisUrl,
  benchStack,
  type CpuTimes,
  checkBenchDb,
  cpuSince,
  cpuTimes,
  deleteKeys,
  emit,
  exactlyOnce,
  int,
  median,
  ms,
  note,
  type Provider,
  pool,
  QUICK,
  REDIS_HOST,
  REDIS_PORT,
  ratio,
  type SectionResult,
  sleep,
  startProvider,
  summary,
  table,
} from "./lib.ts";
import { chart } from "./svg.ts";

const LATENCIES = [1000, 100];
const SIZES = QUICK ? [100] : [100, 1000];
const ROUNDS = QUICK ? 1 : 2;
/** Callers enqueueing at once (a web tier's worth of request handlers). */
const CALLERS = 20;
/** BullMQ worker concurrency: the broker's outbound socket cap (dev/broker/outbound.ts). */
const BULL_CONCURRENCY = 256;
const BATCH = 100;
/** How long after the last landing we keep counting receipts, to catch late duplicates (ms). */
const SETTLE_MS = 1500;
/** Inline orders actually run per latency; the rest is extrapolated. */
const inlineSample = (latency: number, n: number) => Math.min(n, latency >= 1000 ? (QUICK ? 10 : 20) : 100);

type Way = "inline" | "celeriac" | "celeriac-batch" | "bullmq" | "bullmq-batch" | "celeriac-dev";

export interface BurstRun {
  way: Way;
  n: number;
  latency: number;
  round: number;
  /** From the first enqueue (or order) sent until the last notification's 200 went out (ms). */
  lastMs: number;
  enqueue: { p50: number; p99: number; n: number };
  duplicates: number;
  misses: number;
  errors: number;
  maxInFlight: number;
  /** From the first enqueue sent until the last enqueue answered (ms). */
  enqueuedMs: number;
  /** CPU used from the first enqueue to the last landing (ms), by process group. */
  cpu: CpuTimes;
  /** Set when only `measured` of `n` orders ran and the rest is extrapolated. */
  measured?: number;
}

const bullVersion = () =>
  (JSON.parse(readFileSync(new URL("../node_modules/bullmq/package.json", import.meta.url), "utf8")) as { version: string }).version;

const headers = { authorization: `Bearer ${DEV_API_KEY}`, "content-type": "application/json" };
const webhook = (p: Provider, id: string) => ({ url: `${p.url}/n/${id}`, method: "POST", body: { json: { order: id } } });
const chunks = <T>(xs: T[], size: number) =>
  Array.from({ length: Math.ceil(xs.length / size) }, (_, i) => xs.slice(i * size, (i + 1) * size));
const waitBudget = (n: number, latency: number) => Math.max(60_000, 4 * (n / BULL_CONCURRENCY + 1) * latency + n * 30);

async function finish(
  p: Provider,
  ids: string[],
  t0: number,
  c0: ReturnType<typeof cpuTimes>,
  lat: number[],
  errors: number,
  base: Omit<BurstRun, "lastMs" | "enqueue" | "duplicates" | "misses" | "errors" | "maxInFlight" | "cpu" | "enqueuedMs">,
): Promise<BurstRun> {
  const enqueuedMs = performance.now() - t0;
  await p.waitFor(ids, waitBudget(ids.length, p.latencyMs));
  const cpu = cpuSince(c0);
  const landed = ids.map((id) => p.landed.get(id)).filter((t): t is number => t !== undefined);
  await sleep(SETTLE_MS);
  const s = summary(lat);
  return {
    ...base,
    lastMs: landed.length ? Math.max(...landed) - t0 : NaN,
    enqueue: { p50: s.p50, p99: s.p99, n: s.n },
    ...exactlyOnce(p, ids),
    errors,
    maxInFlight: p.maxInFlight,
    cpu,
    enqueuedMs,
  };
}

async function viaCeleriac(stack: Stack, p: Provider, n: number, batch: boolean, tag: string, round: number): Promise<BurstRun> {
  p.reset();
  const ids = Array.from({ length: n }, (_, i) => `${tag}-${i}`);
  const lat: number[] = [];
  let errors = 0;
  const call = async (path: string, body: unknown, expect: number) => {
    const s = performance.now();
    const r = await fetch(stack.worker.url + path, { method: "POST", headers, body: JSON.stringify(body) });
    const text = await r.text();
    lat.push(performance.now() - s);
    if (r.status !== expect) {
      if (errors++ === 0) note(`celeriac answered ${r.status}: ${text.slice(0, 300)}`);
    }
  };
  const c0 = cpuTimes();
  const t0 = performance.now();
  if (!batch) {
    await pool(n, CALLERS, (i) => call("/v1/tasks/webhook", { payload: webhook(p, ids[i]!) }, 202));
  } else {
    const groups = chunks(ids, BATCH);
    await pool(groups.length, CALLERS, (g) =>
      call("/v1/tasks", { tasks: groups[g]!.map((id) => ({ task: "webhook", payload: webhook(p, id) })) }, 202),
    );
  }
  return finish(p, ids, t0, c0, lat, errors, { way: batch ? "celeriac-batch" : "celeriac", n, latency: p.latencyMs, round });
}

const connection = { host: REDIS_HOST, port: REDIS_PORT, db: BENCH_DB, maxRetriesPerRequest: null };

async function viaBullmq(p: Provider, n: number, batch: boolean, tag: string, round: number): Promise<BurstRun> {
  p.reset();
  const ids = Array.from({ length: n }, (_, i) => `${tag}-${i}`);
  const name = `celeriac-bench-${process.pid}-${tag}`;
  const queue = new Queue(name, { connection });
  const worker = new Worker(
    name,
    async (job) => {
      const r = await fetch(job.data.url as string, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ order: job.data.id }),
      });
      await r.arrayBuffer();
      if (!r.ok) throw new Error(`provider answered ${r.status}`);
      return { status: r.status };
    },
    { connection, concurrency: BULL_CONCURRENCY },
  );
  await worker.waitUntilReady();
  await queue.waitUntilReady();
  const opts = { attempts: 6, backoff: { type: "exponential", delay: 1000 } };
  const data = (id: string) => ({ id, url: `${p.url}/n/${id}` });
  const lat: number[] = [];
  try {
    const c0 = cpuTimes();
    const t0 = performance.now();
    if (!batch) {
      await pool(n, CALLERS, async (i) => {
        const s = performance.now();
        await queue.add("notify", data(ids[i]!), opts);
        lat.push(performance.now() - s);
      });
    } else {
      const groups = chunks(ids, BATCH);
      await pool(groups.length, CALLERS, async (g) => {
        const s = performance.now();
        await queue.addBulk(groups[g]!.map((id) => ({ name: "notify", data: data(id), opts })));
        lat.push(performance.now() - s);
      });
    }
    return await finish(p, ids, t0, c0, lat, 0, { way: batch ? "bullmq-batch" : "bullmq", n, latency: p.latencyMs, round });
  } finally {
    await worker.close();
    await queue.obliterate({ force: true });
    await queue.close();
  }
}

/**
 * Inline: an order endpoint that sends each order's notification before answering, one order at
 * a time (the sum of L). Only `k` orders run; `n` is extrapolated from their per-order time.
 */
async function inline(p: Provider, n: number, k: number, tag: string, round: number): Promise<BurstRun> {
  p.reset();
  let chain: Promise<unknown> = Promise.resolve();
  const orders = http.createServer((req, res) => {
    const id = (req.url ?? "").split("/").pop() ?? "";
    req.resume();
    const sent = chain.then(async () => {
      const r = await fetch(`${p.url}/n/${id}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ order: id }),
      });
      await r.arrayBuffer();
      return r.status;
    });
    chain = sent.catch(() => {});
    sent.then(
      (status) => res.writeHead(status === 200 ? 201 : 502).end(),
      () => res.writeHead(502).end(),
    );
  });
  orders.keepAliveTimeout = 30_000;
  await new Promise<void>((r) => orders.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(orders.address() as AddressInfo).port}`;
  const ids = Array.from({ length: k }, (_, i) => `${tag}-${i}`);
  const lat: number[] = [];
  let errors = 0;
  try {
    const c0 = cpuTimes();
    const t0 = performance.now();
    await Promise.all(
      ids.map(async (id) => {
        const s = performance.now();
        const r = await fetch(`${url}/order/${id}`, { method: "POST" });
        await r.arrayBuffer();
        lat.push(performance.now() - s);
        if (r.status !== 201) errors++;
      }),
    );
    const run = await finish(p, ids, t0, c0, lat, errors, { way: "inline", n: k, latency: p.latencyMs, round });
    if (k === n) return run;
    // The k-th order waits k per-order times: extrapolate the sum and the caller's wait.
    const per = run.lastMs / k;
    return { ...run, n, measured: k, lastMs: per * n, enqueue: { p50: per * Math.ceil(0.5 * n), p99: per * Math.ceil(0.99 * n), n: k } };
  } finally {
    await new Promise<void>((r) => {
      orders.close(() => r());
      orders.closeAllConnections();
    });
  }
}

const WAY_LABEL: Record<Way, string> = {
  inline: "(a) inline, one after another",
  celeriac: "(b) celeriac, `POST /v1/tasks/webhook`",
  "celeriac-batch": "(b′) celeriac, `POST /v1/tasks` × 100",
  bullmq: "(c) BullMQ, `queue.add`",
  "bullmq-batch": "(c′) BullMQ, `queue.addBulk` × 100",
  "celeriac-dev": "(b, dev runtime) celeriac under `wrangler dev`, `POST /v1/tasks/webhook`",
};
const CONCURRENCY: Record<Way, string> = {
  inline: "1 send at a time",
  celeriac: `${CALLERS} callers; broker ≤ 256 deliveries in flight`,
  "celeriac-batch": `batches in parallel; broker ≤ 256 in flight`,
  bullmq: `${CALLERS} callers; worker concurrency ${BULL_CONCURRENCY}`,
  "bullmq-batch": `batches in parallel; worker concurrency ${BULL_CONCURRENCY}`,
  "celeriac-dev": `${CALLERS} callers; broker ≤ 256 deliveries in flight`,
};

const K_NOTE = "for the measured orders only";
const sec = (x: number) => (Number.isFinite(x) ? (x / 1000).toFixed(2) : "?");
const cpuCell = (rs: BurstRun[]) =>
  `${sec(median(rs.map((r) => r.cpu.self)))} / ${sec(median(rs.map((r) => r.cpu.children - r.cpu.workerd)))} / ${sec(median(rs.map((r) => r.cpu.workerd)))} / ${sec(median(rs.map((r) => r.cpu.redis)))}${rs.some((r) => r.cpu.lost) ? " (a process ended meanwhile, not counted)" : ""}`;

function report(runs: BurstRun[]): string {
  const out: string[] = [];
  for (const latency of LATENCIES) {
    out.push(`\n#### Provider latency L = ${ms(latency)}\n`);
    const rows: (string | number)[][] = [];
    for (const n of SIZES) {
      const ref = runs.filter((r) => r.way === "celeriac" && r.n === n && r.latency === latency);
      for (const way of Object.keys(WAY_LABEL) as Way[]) {
        const rs = runs.filter((r) => r.way === way && r.n === n && r.latency === latency);
        if (!rs.length) continue;
        const last = median(rs.map((r) => r.lastMs));
        const per = rs.map((r) => r.lastMs / (ref.find((x) => x.round === r.round)?.lastMs ?? NaN));
        const m = rs[0]!.measured;
        const enq = (k: "p50" | "p99") => ms(median(rs.map((r) => r.enqueue[k])));
        rows.push([
          int(n),
          WAY_LABEL[way],
          CONCURRENCY[way],
          m ? `${ms(last)} (extrapolated from ${m} measured)` : ms(last),
          way === "inline" ? "–" : ms(median(rs.map((r) => r.enqueuedMs))),
          way.endsWith("batch")
            ? `${enq("p50")} / ${enq("p99")} per batch of ${BATCH}`
            : `${enq("p50")} / ${enq("p99")}${m ? " (extrapolated)" : ""}`,
          `${rs.reduce((a, r) => a + r.duplicates, 0)} / ${rs.reduce((a, r) => a + r.misses, 0)}${rs.some((r) => r.errors) ? ` (${rs.reduce((a, r) => a + r.errors, 0)} errors)` : ""}`,
          Math.max(...rs.map((r) => r.maxInFlight)),
          m ? `${cpuCell(rs)} (${K_NOTE})` : cpuCell(rs),
          way.startsWith("celeriac") ? ms(median(rs.map((r) => r.cpu.workerd / r.n))) : "–",
          way === "celeriac" ? "1×" : `${ratio(median(per), 1)}${rs.length > 1 ? ` (${per.map((x) => ratio(x, 1)).join(", ")})` : ""}`,
        ]);
      }
    }
    out.push(
      table(
        [
          "N",
          "way",
          "concurrency",
          "time to last notification",
          "all enqueued after",
          "caller's enqueue p50 / p99",
          "duplicates / misses",
          "max in flight at provider",
          "CPU s: bench / wrangler / workerd / Redis",
          "workerd CPU per task (enqueue + delivery)",
          "÷ (b)",
        ],
        rows,
      ),
    );
  }
  return out.join("\n");
}

export async function runBurst(): Promise<SectionResult> {
  process.env.REDIS_URL = benchRedisUrl(); // the bridge under the stack writes into the bench database
  const raw = benchRedis();
  await checkBenchDb(raw, ["celeriac:", "bull:celeriac-bench-"]);
  note(`burst: starting the stacks (workerd serve, and wrangler dev for one row; broker time scale 1, Redis db ${BENCH_DB})`);
  const stack = await benchStack("workerd-serve");
  const devStack = await benchStack("workerd");
  const runs: BurstRun[] = [];
  const started = performance.now();
  try {
    for (const latency of LATENCIES) {
      const p = await startProvider(latency);
      try {
        // Warm-up: the isolate, its script SHAs, sockets, BullMQ's Lua scripts.
        await viaCeleriac(stack, p, 20, false, `warm${latency}`, 0);
        await viaBullmq(p, 20, false, `warm${latency}`, 0);
        for (let round = 1; round <= ROUNDS; round++) {
          for (const n of SIZES) {
            const tag = `L${latency}-N${n}-r${round}`;
            // Alternate which system goes first from round to round.
            const order =
              round % 2
                ? ["celeriac", "bullmq", "celeriac-batch", "bullmq-batch"]
                : ["bullmq", "celeriac", "bullmq-batch", "celeriac-batch"];
            for (const way of order) {
              note(`burst: ${way} N=${n} L=${latency} ms, round ${round}`);
              runs.push(
                way.startsWith("celeriac")
                  ? await viaCeleriac(stack, p, n, way.endsWith("batch"), `${tag}-${way}`, round)
                  : await viaBullmq(p, n, way.endsWith("batch"), `${tag}-${way}`, round),
              );
            }
          }
        }
        // Inline does not depend on N beyond the sum, so one sample per L serves both sizes.
        for (const n of SIZES) {
          const k = inlineSample(latency, n);
          note(`burst: inline N=${n} L=${latency} ms (${k} orders run)`);
          runs.push(await inline(p, n, k, `L${latency}-N${n}-inline`, 1));
        }
        // One row in the dev runtime, for scale: the same burst under `wrangler dev`.
        const big = SIZES.at(-1)!;
        await viaCeleriac(devStack, p, 20, false, `warm-dev${latency}`, 0);
        note(`burst: celeriac under wrangler dev N=${big} L=${latency} ms`);
        runs.push({ ...(await viaCeleriac(devStack, p, big, false, `L${latency}-N${big}-dev`, 1)), way: "celeriac-dev" });
      } finally {
        await p.close();
      }
    }
  } finally {
    await Promise.all([stack.close(), devStack.close()]);
    const removed = (await deleteKeys(raw, "celeriac:*")) + (await deleteKeys(raw, "bull:celeriac-bench-*"));
    note(`burst: removed ${removed} keys from Redis db ${BENCH_DB}`);
    raw.disconnect();
  }
  const seconds = (performance.now() - started) / 1000;

  const svg = chart(
    LATENCIES.flatMap((latency) =>
      (["inline", "celeriac", "bullmq"] as const).map((way) => ({
        label: `${{ inline: "(a) inline", celeriac: "(b) celeriac", bullmq: "(c) BullMQ" }[way]}, L = ${latency >= 1000 ? `${latency / 1000} s` : `${latency} ms`}`,
        color: { inline: "#c0392b", celeriac: "#2e7d32", bullmq: "#1f5fa8" }[way],
        dashed: latency < 1000,
        points: SIZES.map((n) => {
          const rs = runs.filter((r) => r.way === way && r.n === n && r.latency === latency);
          return { n, ms: median(rs.map((r) => r.lastMs)), extrapolated: rs.some((r) => r.measured !== undefined) };
        }),
      })),
    ),
    "Webhook burst, no provider limit: time until the last notification lands",
  );

  const markdown = `## 2. The webhook burst (no provider limit)

N orders arrive at once; each must send one notification through a provider (a local node:http
endpoint) that answers 200 after L, has no rate limit, and counts receipts per notification id. Same machine, same
provider, same Redis (db ${BENCH_DB}). "Time to last notification" runs from the first enqueue (or order)
sent until the provider's 200 for the last notification went out. Median of ${ROUNDS} round(s); the
order of the systems alternates between rounds; "÷ (b)" is that run's time over celeriac's in the
same round (per-round values in brackets). Duplicates / misses are summed over rounds, counted
${SETTLE_MS / 1000} s after the last landing. "All enqueued after": until the last enqueue call
returned. CPU: seconds of CPU from the first enqueue to the last landing used by the bench process
(the broker, the bridge, the provider and the callers, and BullMQ's Queue and Worker), by
\`wrangler dev\`'s own Node process(es) (none in \`workerd serve\`), by workerd (idle during BullMQ's runs) and by redis-server (shared: other work
on the machine's Redis counts too); from /proc.

- (a) inline: an order endpoint that sends each notification before answering, one order at a time;
  only the first K orders are run and the rest is extrapolated (K × per-order time), as labelled.
- (b) celeriac: the deploy bundle (\`wrangler deploy --dry-run\`) in \`workerd serve\` alone, the
  production runtime, with wrangler.jsonc's vars; the local QStash broker at time scale 1, the
  Upstash-REST bridge over the real Redis; the \`webhook\` task calls the provider. The broker runs in
  the bench process, with the provider and the callers.
- (c) BullMQ ${bullVersion()}: \`Queue\` + \`Worker\` in the bench process on the same Redis (a unique queue,
  obliterated afterwards), 6 attempts with exponential backoff like celeriac's 5 retries.
- (b, dev runtime): the same as (b) under \`wrangler dev\` (its proxy and Node process in the request
  path), one round at the largest N, for scale; these are dev-runtime figures.

${report(runs)}

![time to last notification](webhook-burst.svg)

Section wall time: ${seconds.toFixed(0)} s.`;
  return {
    id: "burst",
    title: "The webhook burst",
    markdown,
    data: { runs, svg, svgFile: "webhook-burst.svg", sizes: SIZES, latencies: LATENCIES },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await runBurst();
  const { writeFileSync } = await import("node:fs");
  writeFileSync(new URL("./webhook-burst.svg", import.meta.url), (r.data as { svg: string }).svg);
  await emit(r);
}
