/**
 * The noon burst through Resend's limits: N "order placed" emails from 20 callers, the mail sink at
 * Resend's default limit (5 requests/s per key, ≤ 100 emails per batch call) with a provider
 * latency. (a) inline, one send per order; (b) celeriac unbatched (one Resend call per email, paced
 * by flow control); (c) celeriac batched (send-email's default); (d) BullMQ with its rate limiter at
 * 5/s, one email per job. celeriac runs as the deploy bundle in `workerd serve`.
 *   node bench/noon.ts [--quick] [--json out.json]
 * Runs that would take minutes at 5 calls/s are sampled and extrapolated, as labelled.
 */
import { readFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Queue, Worker } from "bullmq";
import { Resend } from "resend";
import type { CapturedEmail } from "../dev/mail-sink.ts";
import { type AppProcess, DEV_API_KEY, freePort, type Stack, startApp } from "../dev/stack.ts";
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
  median,
  ms,
  note,
  pool,
  QUICK,
  REDIS_HOST,
  REDIS_PORT,
  ratio,
  type SectionResult,
  sleep,
  table,
} from "./lib.ts";
import { chart } from "./svg.ts";

const SIZES = QUICK ? [100] : [100, 1000];
const CALLERS = 20;
/** The provider's own time to answer a call, ms (the sink's latency knob). */
const SINK_LATENCY_MS = 100;
const RATE = 5;
const ROUNDS = QUICK ? 1 : 3;
/** Orders run inline before extrapolating (at 5 calls/s each takes ≥ 200 ms). */
const INLINE_SAMPLE = QUICK ? 10 : 25;
/** Paced one-per-call ways are measured at this N and extrapolated beyond it. */
const PACED_MEASURED = QUICK ? 50 : 100;
const FROM = "Shop <orders@celeriac.dev>";

type Way = "inline" | "unbatched" | "batched" | "batched-events" | "bullmq";
interface Run {
  way: Way;
  n: number;
  round: number;
  /** First order sent → last email accepted by the provider (ms). */
  lastMs: number;
  /** First order sent → first email accepted (ms). */
  firstMs: number;
  duplicates: number;
  misses: number;
  /** Provider calls that carried the emails (batch calls count once). */
  calls: number;
  /** Enqueue (or order) answered, p50 (ms). */
  answerP50: number;
  /** workerd CPU from the first order to the last email, ms. */
  workerdCpu: number;
  /** Set when only `measured` orders ran and the rest is extrapolated. */
  measured?: number;
}

const headers = { authorization: `Bearer ${DEV_API_KEY}`, "content-type": "application/json" };
const email = (tag: string, i: number) => ({
  to: `customer+${i}@celeriac.dev`,
  subject: `${tag} #${i}`,
  text: `Order ${i} placed. Thank you!`,
});

/** The sink's emails of one run, and what they say about it. */
function outcome(stack: Stack, tag: string, n: number, t0: number) {
  const mine = stack.sink.emails().filter((e: CapturedEmail) => e.subject.startsWith(`${tag} #`));
  const count = new Map<string, number>();
  for (const e of mine) count.set(e.subject, (count.get(e.subject) ?? 0) + 1);
  let duplicates = 0;
  let misses = 0;
  for (let i = 0; i < n; i++) {
    const c = count.get(`${tag} #${i}`) ?? 0;
    if (c === 0) misses++;
    else duplicates += c - 1;
  }
  const at = mine.map((e) => Date.parse(e.created_at));
  const keys = new Set(mine.map((e) => (e.endpoint === "/emails/batch" ? e.idempotency_key : e.id)));
  return { duplicates, misses, lastMs: Math.max(...at) - t0, firstMs: Math.min(...at) - t0, calls: keys.size, got: mine.length };
}

async function waitForEmails(stack: Stack, tag: string, n: number, budgetMs: number) {
  const deadline = Date.now() + budgetMs;
  while (Date.now() < deadline) {
    if (stack.sink.emails().filter((e) => e.subject.startsWith(`${tag} #`)).length >= n) return;
    await sleep(100);
  }
}

async function viaCeleriac(
  stack: Stack,
  app: AppProcess,
  way: "batched" | "batched-events" | "unbatched",
  n: number,
  tag: string,
  round: number,
): Promise<Run> {
  const answers: number[] = [];
  const c0 = cpuTimes();
  const t0 = Date.now();
  await pool(n, CALLERS, async (i) => {
    const s = performance.now();
    const r = await fetch(`${app.url}/v1/tasks/send-email`, { method: "POST", headers, body: JSON.stringify({ payload: email(tag, i) }) });
    await r.arrayBuffer();
    answers.push(performance.now() - s);
    if (r.status !== 202) note(`celeriac answered ${r.status}`);
  });
  await waitForEmails(stack, tag, n, 60_000 + (n / RATE) * 1500);
  const cpu = cpuSince(c0);
  await sleep(1500); // late duplicates would show up here
  const o = outcome(stack, tag, n, t0);
  return { way, n, round, ...o, answerP50: median(answers), workerdCpu: cpu.workerd };
}

const connection = { host: REDIS_HOST, port: REDIS_PORT, db: BENCH_DB, maxRetriesPerRequest: null };

/** BullMQ's documented way: one job per email, the worker's rate limiter at 5 jobs a second. */
async function viaBullmq(stack: Stack, n: number, tag: string, round: number): Promise<Run> {
  const name = `celeriac-bench-${process.pid}-${tag.replace(/\W/g, "")}`;
  const resend = new Resend("re_celeriac_dev", { baseUrl: stack.sink.url });
  const queue = new Queue(name, { connection });
  const worker = new Worker(
    name,
    async (job) => {
      const { error } = await resend.emails.send({ from: FROM, ...job.data }, { idempotencyKey: `bull-${job.id}` });
      if (error) throw new Error(`${error.name}: ${error.message}`);
    },
    { connection, concurrency: RATE, limiter: { max: RATE, duration: 1000 } },
  );
  await Promise.all([queue.waitUntilReady(), worker.waitUntilReady()]);
  const answers: number[] = [];
  try {
    const t0 = Date.now();
    await pool(n, CALLERS, async (i) => {
      const s = performance.now();
      await queue.add("email", email(tag, i), { attempts: 6, backoff: { type: "exponential", delay: 1000 } });
      answers.push(performance.now() - s);
    });
    await waitForEmails(stack, tag, n, 60_000 + (n / RATE) * 1500);
    await sleep(1500);
    return { way: "bullmq", n, round, ...outcome(stack, tag, n, t0), answerP50: median(answers), workerdCpu: 0 };
  } finally {
    await worker.close();
    await queue.obliterate({ force: true });
    await queue.close();
  }
}

/** Inline: an order endpoint that sends the email before it answers, one order at a time; a 429 waits Retry-After. */
async function inline(stack: Stack, k: number, tag: string): Promise<Run> {
  const resend = new Resend("re_celeriac_dev", { baseUrl: stack.sink.url });
  let chain: Promise<unknown> = Promise.resolve();
  const orders = http.createServer((req, res) => {
    const i = Number((req.url ?? "").split("/").pop());
    req.resume();
    const sent = chain.then(async () => {
      for (let tries = 0; tries < 20; tries++) {
        const { error, headers: h } = await resend.emails.send({ from: FROM, ...email(tag, i) });
        if (!error) return 201;
        if (error.statusCode !== 429) return 502;
        await sleep(Number(h?.["retry-after"] ?? 1) * 1000);
      }
      return 502;
    });
    chain = sent.catch(() => {});
    sent.then(
      (status) => res.writeHead(status).end(),
      () => res.writeHead(502).end(),
    );
  });
  await new Promise<void>((r) => orders.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(orders.address() as AddressInfo).port}`;
  try {
    const t0 = Date.now();
    const answers: number[] = [];
    await pool(k, CALLERS, async (i) => {
      const s = performance.now();
      await (await fetch(`${url}/order/${i}`, { method: "POST" })).arrayBuffer();
      answers.push(performance.now() - s);
    });
    return { way: "inline", n: k, round: 1, ...outcome(stack, tag, k, t0), answerP50: median(answers), workerdCpu: 0 };
  } finally {
    await new Promise<void>((r) => {
      orders.close(() => r());
      orders.closeAllConnections();
    });
  }
}

/** A paced run's time at a larger N: its first email, then the same pace for the rest. */
function extrapolate(r: Run, n: number): Run {
  const per = (r.lastMs - r.firstMs) / Math.max(1, r.n - 1);
  return { ...r, n, measured: r.n, lastMs: r.firstMs + per * (n - 1), calls: Math.round((r.calls * n) / r.n) };
}

const LABEL: Record<Way, string> = {
  inline: "(a) inline, one send per order",
  unbatched: "(b) celeriac, unbatched (one call per email, paced by flow control)",
  batched: "(c) celeriac, batched (send-email's default)",
  "batched-events": "(c′) as (c), with the sink's delivery events on (2 signed webhooks per email to the Worker)",
  bullmq: "(d) BullMQ, rate limiter 5/s, one email per job",
};
const COLOR: Record<Way, string> = {
  inline: "#c0392b",
  unbatched: "#8e44ad",
  batched: "#2e7d32",
  "batched-events": "#7cb342",
  bullmq: "#1f5fa8",
};

export async function runNoon(): Promise<SectionResult> {
  process.env.REDIS_URL = benchRedisUrl();
  const raw = benchRedis();
  await checkBenchDb(raw, ["celeriac:", "bull:celeriac-bench-"]);
  note(`noon: starting the stack (workerd serve; sink at ${RATE} requests/s, ${SINK_LATENCY_MS} ms per call; Redis db ${BENCH_DB})`);
  const stack = await benchStack("workerd-serve", { latencyMs: SINK_LATENCY_MS });
  const port = await freePort();
  const unbatchedApp = await startApp("workerd-serve", port, {
    ...stack.env,
    CELERIAC_PUBLIC_URL: `http://127.0.0.1:${port}`,
    CELERIAC_UNBATCHED: "send-email",
  });
  // Resend's delivery events (email.sent, email.delivered) are off but for (c′): BullMQ's way
  // handles none, so they would load celeriac's one local workerd alone; (c′) shows what they cost.
  const events = { url: `${stack.worker.url}/webhooks/resend`, secret: stack.env.RESEND_WEBHOOK_SECRET! };
  stack.sink.sendEventsTo(null);
  const runs: Run[] = [];
  const started = performance.now();
  try {
    note("noon: warm-up");
    await viaCeleriac(stack, stack.worker, "batched", 20, "warm-b", 0);
    await viaCeleriac(stack, unbatchedApp, "unbatched", 5, "warm-u", 0);
    await sleep(1500); // let the provider's window empty
    for (let round = 1; round <= ROUNDS; round++) {
      for (const n of SIZES) {
        note(`noon: (c) batched N=${n}, round ${round}`);
        runs.push(await viaCeleriac(stack, stack.worker, "batched", n, `r${round}-N${n}-batched`, round));
        await sleep(1500);
      }
    }
    stack.sink.sendEventsTo(events);
    for (const n of SIZES) {
      note(`noon: (c′) batched with delivery events N=${n}`);
      runs.push(await viaCeleriac(stack, stack.worker, "batched-events", n, `ev-N${n}-batched`, 1));
      await sleep(3000); // the events of the last emails
    }
    stack.sink.sendEventsTo(null);
    note(`noon: (b) unbatched N=${PACED_MEASURED}`);
    const b = await viaCeleriac(stack, unbatchedApp, "unbatched", PACED_MEASURED, "unbatched", 1);
    await sleep(1500);
    note(`noon: (d) BullMQ N=${PACED_MEASURED}`);
    const d = await viaBullmq(stack, PACED_MEASURED, "bullmq", 1);
    await sleep(1500);
    note(`noon: (a) inline, ${INLINE_SAMPLE} orders`);
    const a = await inline(stack, INLINE_SAMPLE, "inline");
    for (const n of SIZES) {
      for (const r of [a, b, d]) runs.push(r.n === n ? r : extrapolate(r, n));
    }
  } finally {
    await unbatchedApp.close();
    await stack.close();
    const removed = (await deleteKeys(raw, "celeriac:*")) + (await deleteKeys(raw, "bull:celeriac-bench-*"));
    note(`noon: removed ${removed} keys from Redis db ${BENCH_DB}`);
    raw.disconnect();
  }
  const seconds = (performance.now() - started) / 1000;
  const at = (way: Way, n: number) => median(runs.filter((r) => r.way === way && r.n === n).map((r) => r.lastMs));
  const rows = SIZES.flatMap((n) =>
    (["inline", "unbatched", "batched", "batched-events", "bullmq"] as Way[]).map((way) => {
      const rs = runs.filter((r) => r.way === way && r.n === n);
      const m = rs[0]!.measured;
      const last = at(way, n);
      return [
        int(n),
        LABEL[way],
        m
          ? `${ms(last)} (extrapolated from ${m} measured)`
          : `${ms(last)}${rs.length > 1 ? ` (${rs.map((r) => ms(r.lastMs)).join(", ")})` : ""}`,
        m ? `${int(rs[0]!.calls)} (extrapolated)` : int(median(rs.map((r) => r.calls))),
        `${rs.reduce((s, r) => s + r.duplicates, 0)} / ${rs.reduce((s, r) => s + r.misses, 0)}`,
        ms(median(rs.map((r) => r.answerP50))),
        way === "batched" || way === "batched-events" || way === "unbatched"
          ? m
            ? "–"
            : ms(median(rs.map((r) => r.workerdCpu / r.n)))
          : "–",
        way === "batched" ? "1×" : `${ratio(last, at("batched", n))}${last > at("batched", n) ? " slower" : ""}`,
      ];
    }),
  );
  const big = SIZES.at(-1)!;
  const svg = chart(
    (["inline", "unbatched", "batched", "bullmq"] as Way[]).map((way) => ({
      label: LABEL[way].replace(/ \(.*$/, "").replace(/, one .*$/, ""),
      color: COLOR[way],
      points: SIZES.map((n) => ({
        n,
        ms: at(way, n),
        extrapolated: runs.some((r) => r.way === way && r.n === n && r.measured !== undefined),
      })),
    })),
    "Noon burst at Resend's limit (5 calls/s, 100 per batch): time to the last email",
  );
  const markdown = `## 1. The noon burst through Resend's limits

N "order placed" emails, ordered at once by ${CALLERS} callers, through the mail sink at Resend's
default limit: ${RATE} requests/s per API key (sliding 1 s window, 429 with \`retry-after\`) and at most
100 emails per batch call; every call takes ${SINK_LATENCY_MS} ms (the sink's latency knob). "Time to
the last email" runs from the first order sent to the sink accepting the last email (its own
clock). celeriac runs as the deploy bundle in \`workerd serve\` (the production runtime) with the
local broker at real time and the Redis bridge over the real Redis (db ${BENCH_DB}).

- (a) an order endpoint that sends each email with the \`resend\` SDK before answering, one order
  at a time, waiting \`retry-after\` on a 429; ${INLINE_SAMPLE} orders run, the rest extrapolated.
- (b) celeriac with \`CELERIAC_UNBATCHED=send-email\`: one Resend call per email, paced by QStash flow
  control (key \`resend\`, ${RATE}/s); measured at N = ${PACED_MEASURED}, extrapolated beyond at the measured pace.
- (c) celeriac as shipped: deliveries join an outbox and go out in Resend batch calls of up to 100,
  paced the same way; median of ${ROUNDS} round(s) (each round's value in brackets).
- (c′) as (c), one round, with the sink's delivery events on: every accepted email also makes the sink
  POST \`email.sent\` and \`email.delivered\` (Svix-signed) to the Worker's \`/webhooks/resend\` during the
  burst, as Resend would to a configured endpoint. They are off in the other rows: BullMQ's way
  handles none, and they would load celeriac's one local workerd alone.
- (d) BullMQ ${(JSON.parse(readFileSync(new URL("../node_modules/bullmq/package.json", import.meta.url), "utf8")) as { version: string }).version}: one job per email, \`Worker\` with \`limiter: { max: ${RATE}, duration: 1000 }\`
  (its documented way; batches are a paid BullMQ feature), 6 attempts; measured at N = ${PACED_MEASURED}, extrapolated beyond.

${table(["N", "way", "time to the last email", "provider calls", "duplicates / misses", "caller's answer p50", "workerd CPU per email", "÷ (c)"], rows)}

At N = ${int(big)}, (c) delivers the last email ${ms(at("batched", big))} after the first order: ${ratio(at("unbatched", big), at("batched", big))} sooner
than (b) and ${ratio(at("bullmq", big), at("batched", big))} sooner than (d).

![time to the last email](noon-burst.svg)

Section wall time: ${seconds.toFixed(0)} s.`;
  return { id: "noon", title: "The noon burst through Resend's limits", markdown, data: { runs, svg, svgFile: "noon-burst.svg" } };
}

if (import.meta.url === `file://${process.argv[1]}`) await emit(await runNoon());
