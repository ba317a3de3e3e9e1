// Shared pieces of the benchmarks: figures, tables, the machine line, the slow "provider" that
// counts receipts, and the dedicated Redis logical database the benches write into.
import { readdirSync, readFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import { Redis as IORedis } from "ioredis";
import { type Stack, type StackOptions, startStack } from "../dev/stack.ts";

/** What a section hands back to bench/run.ts. */
export interface SectionResult {
  id: string;
  title: string;
  markdown: string;
  /** Figures for the chart and the README headline. */
  data?: unknown;
}

export const args = process.argv.slice(2);
export const QUICK = args.includes("--quick");

/** The p-th percentile (nearest rank) of an ascending list. */
export function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export function summary(values: number[]) {
  const s = [...values].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / (s.length || 1);
  return { n: s.length, p50: pct(s, 50), p99: pct(s, 99), max: s.at(-1) ?? NaN, mean };
}

/** The median; the mean of the middle two for an even count. */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Milliseconds, readable: 0.42 ms, 12.3 ms, 4.56 s, 1,000 s. */
export function ms(v: number): string {
  if (!Number.isFinite(v)) return "–";
  if (v < 10) return `${v.toFixed(2)} ms`;
  if (v < 1000) return `${v.toFixed(1)} ms`;
  if (v < 100_000) return `${(v / 1000).toFixed(2)} s`;
  return `${Math.round(v / 1000).toLocaleString("en-US")} s`;
}

export const ratio = (a: number, b: number) => (Number.isFinite(a / b) ? `${(a / b).toFixed(a / b >= 10 ? 0 : 2)}×` : "–");
export const int = (n: number) => Math.round(n).toLocaleString("en-US");
export const bytes = (n: number) =>
  n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(2)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${Math.round(n)} B`;

export function table(head: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.join(" | ")} |`;
  return [line(head), line(head.map(() => "---")), ...rows.map(line)].join("\n");
}

export function machine(): string {
  const cpus = os.cpus();
  return `${cpus.length} cores (${cpus[0]?.model.trim() ?? "unknown CPU"}), ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB memory, Node ${process.version}, ${os.platform()} ${os.arch()}`;
}

export const sleep = (t: number) => new Promise<void>((r) => setTimeout(r, t));

/** Prints progress to stderr, so stdout stays the markdown. */
export const note = (line: string) => process.stderr.write(`[bench] ${line}\n`);

/** Runs `fn` with console.log/info/warn silenced (the app logs one line per task). */
export async function quietly<T>(fn: () => Promise<T>): Promise<T> {
  const saved = { log: console.log, info: console.info, warn: console.warn };
  console.log = console.info = console.warn = () => {};
  try {
    return await fn();
  } finally {
    Object.assign(console, saved);
  }
}

/** Runs `count` jobs with at most `width` in flight; each gets its index. */
export async function pool(count: number, width: number, job: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < count) await job(next++);
  };
  await Promise.all(Array.from({ length: Math.min(width, count) }, lane));
}

/**
 * The notification provider: answers every request after `latencyMs` with 200 and counts receipts
 * per notification id (the last path segment of `/n/<id>`). "Landed" is when the 200 went out.
 */
export interface Provider {
  url: string;
  latencyMs: number;
  receipts: Map<string, number>;
  landed: Map<string, number>;
  maxInFlight: number;
  reset(): void;
  /** Resolves when `ids` all landed, or after `timeoutMs`; true when all did. */
  waitFor(ids: string[], timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
}

export async function startProvider(latencyMs: number): Promise<Provider> {
  let inFlight = 0;
  let wake: (() => void) | undefined;
  const p: Provider = {
    url: "",
    latencyMs,
    receipts: new Map(),
    landed: new Map(),
    maxInFlight: 0,
    reset() {
      p.receipts.clear();
      p.landed.clear();
      p.maxInFlight = 0;
    },
    async waitFor(ids, timeoutMs) {
      const deadline = performance.now() + timeoutMs;
      while (performance.now() < deadline) {
        if (ids.every((id) => p.landed.has(id))) return true;
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 250);
        });
      }
      return ids.every((id) => p.landed.has(id));
    },
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
  const server = http.createServer((req, res) => {
    const id = (req.url ?? "").split("?")[0]!.split("/").pop() ?? "";
    p.receipts.set(id, (p.receipts.get(id) ?? 0) + 1);
    p.maxInFlight = Math.max(p.maxInFlight, ++inFlight);
    req.resume();
    setTimeout(() => {
      inFlight--;
      res.writeHead(200, { "content-type": "text/plain" }).end("sent");
      if (!p.landed.has(id)) p.landed.set(id, performance.now());
      wake?.();
    }, latencyMs);
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  p.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return p;
}

/** Duplicates (receipts beyond the first) and misses (never received) among `ids`. */
export function exactlyOnce(p: Provider, ids: string[]) {
  let duplicates = 0;
  let misses = 0;
  for (const id of ids) {
    const n = p.receipts.get(id) ?? 0;
    if (n === 0) misses++;
    else duplicates += n - 1;
  }
  return { duplicates, misses };
}

/**
 * The Redis logical database the benchmarks write into, so the shared dev database (0) that the
 * tests and `npm run dev` use is left alone. BENCH_REDIS_DB overrides it.
 */
export const BENCH_DB = Number(process.env.BENCH_REDIS_DB ?? 13);
export const REDIS_HOST = "127.0.0.1";
export const REDIS_PORT = 6379;
export const benchRedisUrl = () => `redis://${REDIS_HOST}:${REDIS_PORT}/${BENCH_DB}`;

/** A raw connection to the bench database (for MEMORY USAGE, INFO, SCAN and clean-up). */
export function benchRedis(): IORedis {
  return new IORedis({ host: REDIS_HOST, port: REDIS_PORT, db: BENCH_DB, lazyConnect: false, maxRetriesPerRequest: 2 });
}

export { deleteKeys } from "../dev/redis-keys.ts";

/** Refuses to run in a database that holds keys the benchmarks did not write. */
export async function checkBenchDb(r: IORedis, ours: string[]): Promise<void> {
  const size = await r.dbsize();
  if (size === 0) return;
  const [, sample] = await r.scan("0", "COUNT", 200);
  const foreign = sample.filter((k) => !ours.some((p) => k.startsWith(p)));
  if (foreign.length) {
    throw new Error(
      `[celeriac] bench: Redis db ${BENCH_DB} holds keys the benchmarks did not write (e.g. ${foreign[0]}); set BENCH_REDIS_DB to an empty one`,
    );
  }
}

/** Writes a section's JSON for bench/run.ts when asked (`--json <file>`), and prints its markdown. */
export async function emit(result: SectionResult): Promise<void> {
  process.stdout.write(`${result.markdown}\n`);
  const at = args.indexOf("--json");
  if (at >= 0 && args[at + 1]) {
    const { writeFileSync } = await import("node:fs");
    writeFileSync(args[at + 1]!, JSON.stringify(result));
  }
}

/**
 * CPU time used (ms): by this process (broker, bridge, provider, callers when they run here), by
 * its descendants (wrangler and workerd), and by redis-server; read from /proc (Linux).
 */
export interface CpuTimes {
  self: number;
  /** All descendants, workerd included. */
  children: number;
  /** Descendants named workerd. */
  workerd: number;
  redis: number;
  /** Descendants that ended in between (their CPU is not counted). */
  lost: number;
}

interface ProcCpu {
  self: number;
  procs: Map<number, { ms: number; comm: string; group: "child" | "redis" }>;
}

/** A snapshot to pass to {@link cpuSince}. */
/** One process's parent, CPU used so far (ms, user + system) and name, from /proc (Linux); throws when it is gone. */
export function procStat(pid: number): { ppid: number; ms: number; comm: string } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime and stime, in clock ticks (100 per second on Linux).
  return { ppid: Number(f[1]), ms: (Number(f[11]) + Number(f[12])) * 10, comm };
}

export function cpuTimes(): ProcCpu {
  const u = process.cpuUsage();
  const out: ProcCpu = { self: (u.user + u.system) / 1000, procs: new Map() };
  try {
    const all = new Map<number, { ppid: number; ms: number; comm: string }>();
    for (const name of readdirSync("/proc")) {
      if (!/^\d+$/.test(name)) continue;
      try {
        all.set(Number(name), procStat(Number(name)));
      } catch {
        // the process ended meanwhile
      }
    }
    const mine = new Set([process.pid]);
    for (let grew = true; grew; ) {
      grew = false;
      for (const [pid, p] of all) if (!mine.has(pid) && mine.has(p.ppid)) mine.add(pid), (grew = true);
    }
    for (const [pid, p] of all) {
      if (pid !== process.pid && mine.has(pid)) out.procs.set(pid, { ms: p.ms, comm: p.comm, group: "child" });
      else if (p.comm === "redis-server") out.procs.set(pid, { ms: p.ms, comm: p.comm, group: "redis" });
    }
  } catch {
    // no /proc: only this process's own figure
  }
  return out;
}

/** CPU used since snapshot `a`, per process: processes that started count whole, ended ones not. */
export function cpuSince(a: ProcCpu): CpuTimes {
  const b = cpuTimes();
  const out: CpuTimes = { self: b.self - a.self, children: 0, workerd: 0, redis: 0, lost: 0 };
  for (const [pid, p] of b.procs) {
    const d = p.ms - (a.procs.get(pid)?.ms ?? 0);
    if (p.group === "redis") out.redis += d;
    else {
      out.children += d;
      if (p.comm === "workerd") out.workerd += d;
    }
  }
  for (const pid of a.procs.keys()) if (!b.procs.has(pid) && a.procs.get(pid)!.group === "child") out.lost++;
  return out;
}

/**
 * The stack the benches measure: the Worker in workerd (by default the deploy bundle in `workerd
 * serve`, the production runtime; "workerd" is `wrangler dev`, the dev runtime), the broker at real
 * time, the bridge over the real Redis; the webhook task may call the local provider (the
 * allow-list matches the host on any port, and the provider's port is random). The mail sink has
 * Resend's default limit unless `sink` says otherwise.
 */
export function benchStack(runtime: "workerd-serve" | "workerd" = "workerd-serve", sink?: StackOptions["sink"]): Promise<Stack> {
  return startStack({
    ports: { bridge: 0, sink: 0, broker: 0, worker: 0, turnstile: 0, site: 0 },
    runtime,
    ...(sink ? { sink } : {}),
    redis: "redis",
    timeScale: 1,
    vars: { CELERIAC_WEBHOOK_ALLOW_HOSTS: "127.0.0.1" },
  });
}
