import { taskKv } from "./kv.ts";
import type { TaskStore } from "./store/index.ts";
import { redisIo } from "./store/lua.ts";
import { pairs } from "./store/record.ts";
import { DURATION_BOUNDS_MS } from "./store/scripts.ts";

/** One task type's figures for one day. */
export interface TaskDayStats {
  enqueued: number;
  attempts: number;
  succeeded: number;
  failed: number;
  cancelled: number;
  retries: number;
  /** Upper bound of the bucket holding the median run (ms); null with no finished runs. */
  p50Ms: number | null;
  p95Ms: number | null;
}

export interface DayReport {
  date: string;
  tasks: Record<string, TaskDayStats>;
  totals: Omit<TaskDayStats, "p50Ms" | "p95Ms">;
}

/** Reads one UTC day's counters (one round trip) and folds them into a report. */
export async function dayReport(store: TaskStore, date: string): Promise<DayReport> {
  const flat = await redisIo(() => store.redis.hgetall(`${store.prefix}stats:${date}`) as unknown as Promise<string[] | null>);
  return buildReport(date, pairs(flat ?? []));
}

/** Builds a report from `<task>:<what>` counters (`d<n>` are duration buckets, 1-based). */
export function buildReport(date: string, counters: Record<string, string>): DayReport {
  // No prototype: a task name is data (a delivery may carry "__proto__"), never a path into Object.
  const tasks: Record<string, TaskDayStats> = Object.create(null);
  const buckets: Record<string, number[]> = Object.create(null);
  for (const [field, value] of Object.entries(counters)) {
    const at = field.lastIndexOf(":");
    const task = field.slice(0, at);
    const what = field.slice(at + 1);
    const t = (tasks[task] ??= { enqueued: 0, attempts: 0, succeeded: 0, failed: 0, cancelled: 0, retries: 0, p50Ms: null, p95Ms: null });
    const n = Number(value);
    if (/^d\d+$/.test(what)) (buckets[task] ??= [])[Number(what.slice(1)) - 1] = n;
    else if (what in t) (t as unknown as Record<string, number>)[what] = n;
  }
  for (const [task, b] of Object.entries(buckets)) {
    tasks[task]!.p50Ms = percentile(b, 0.5);
    tasks[task]!.p95Ms = percentile(b, 0.95);
  }
  const totals = { enqueued: 0, attempts: 0, succeeded: 0, failed: 0, cancelled: 0, retries: 0 };
  for (const t of Object.values(tasks)) for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] += t[k];
  return { date, tasks, totals };
}

/** The upper bound of the bucket where the q-th run falls (the open bucket reports its floor). */
function percentile(buckets: number[], q: number): number | null {
  const total = buckets.reduce((a, b) => a + (b ?? 0), 0);
  if (total === 0) return null;
  const rank = Math.ceil(q * total);
  let seen = 0;
  for (let i = 0; i <= DURATION_BOUNDS_MS.length; i++) {
    seen += buckets[i] ?? 0;
    if (seen >= rank) return DURATION_BOUNDS_MS[i] ?? DURATION_BOUNDS_MS.at(-1)!;
  }
  return DURATION_BOUNDS_MS.at(-1)!;
}

/**
 * The report the daily-stats task stored for a day: in that task's key-value store, under
 * `report:<date>` (the task writes it with `ctx.kv.set`).
 */
export const storedReport = (store: TaskStore, date: string) => taskKv(store, "daily-stats").get<DayReport>(`report:${date}`);
