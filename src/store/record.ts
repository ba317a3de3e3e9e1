import type { CallbackSpec } from "../callback-option.ts";
import type { CallbackStatus } from "../callbacks.ts";
import type { Delivery } from "./delivery.ts";

/** Where a task is in its life. `unknown` is only ever reported for an id never seen. */
export type TaskState = "queued" | "scheduled" | "running" | "retrying" | "succeeded" | "failed" | "cancelled";
export const TASK_STATES: readonly TaskState[] = ["queued", "scheduled", "running", "retrying", "succeeded", "failed", "cancelled"];
export const FINAL_STATES: readonly TaskState[] = ["succeeded", "failed", "cancelled"];

/** Why an attempt or a task failed. */
export interface TaskError {
  code: string;
  message: string;
  retryable: boolean;
  /** What the task kept about the failure, e.g. a webhook's `{status, url, body}` (short). */
  details?: Record<string, unknown>;
}

export interface HistoryEntry {
  at: string;
  state: TaskState;
  attempt?: number;
  error?: TaskError;
}

/** Per-enqueue options, after defaults from the task definition were applied. */
export interface TaskOptions {
  /** Retries after the first attempt. */
  retries: number;
  /** Per-attempt timeout, seconds. */
  timeout: number;
  /** How long a finished record is kept, seconds. */
  resultTtl: number;
  /** The `Upstash-Retry-Delay` expression QStash waits by between attempts (ms over `retried`). */
  retryDelay?: string;
}

/** A task record as callers see it. */
export interface TaskRecord {
  id: string;
  task: string;
  state: TaskState;
  attempts: number;
  payload: unknown;
  options: TaskOptions;
  createdAt: string;
  runAt: string;
  startedAt?: string;
  /** While `retrying`: when the next attempt is due, when known. */
  nextAttemptAt?: string;
  /** While `running`: when the attempt's claim lapses and another delivery may take over. */
  leaseUntil?: string;
  finishedAt?: string;
  result?: unknown;
  error?: TaskError;
  messageId?: string;
  idempotencyKey?: string;
  scheduleId?: string;
  /** Payload paths whose values were kept out of the record (they read "[redacted]"). */
  redacted?: string[];
  /** How many times the task was re-enqueued through `POST /v1/tasks/:id/retry`. */
  generation?: number;
  /** Where the caller asked to hear how it went (the `callback` option). */
  callback?: CallbackSpec;
  /** The callbacks sent so far, each as its own task reports it (read with `GET /v1/tasks/:id`). */
  callbacks?: CallbackStatus[];
  /** For a task that sent email: what Resend's events said about it. */
  delivery?: Delivery;
  /** QStash's dead-letter message id of a failed task, when QStash gave up on one. */
  dlqId?: string;
  /** When a failed task was taken out of the dead letters without a replay. */
  discardedAt?: string;
  history: HistoryEntry[];
}

const iso = (ms: string | undefined) => (ms ? new Date(Number(ms)).toISOString() : undefined);
const json = (s: string | undefined) => (s === undefined || s === "" ? undefined : JSON.parse(s));

/** Builds a record from its Redis hash (field → string) and raw history entries. */
export function recordFromHash(h: Record<string, string>, history: string[] = []): TaskRecord {
  const rec: TaskRecord = {
    id: h.id ?? "",
    task: h.task ?? "",
    state: (h.state ?? "queued") as TaskState,
    attempts: Number(h.attempts ?? 0),
    payload: json(h.payload),
    options: json(h.options),
    createdAt: iso(h.createdAt) ?? "",
    runAt: iso(h.runAt) ?? iso(h.createdAt) ?? "",
    history: history.map((raw) => {
      const e = JSON.parse(raw) as Omit<HistoryEntry, "at"> & { at: number };
      return { ...e, at: new Date(e.at).toISOString() };
    }),
  };
  const optional = {
    startedAt: iso(h.startedAt),
    nextAttemptAt: h.state === "retrying" ? iso(h.nextAt) : undefined,
    leaseUntil: iso(h.leaseUntil),
    finishedAt: iso(h.finishedAt),
    result: json(h.result),
    error: json(h.error),
    messageId: h.messageId || undefined,
    idempotencyKey: h.idempotencyKey || undefined,
    scheduleId: h.scheduleId || undefined,
    generation: h.gen ? Number(h.gen) : undefined,
    redacted: json(h.redacted),
    delivery: json(h.delivery),
    callback: json(h.callback),
    dlqId: h.dlqId || undefined,
    discardedAt: iso(h.discardedAt),
  };
  for (const [k, v] of Object.entries(optional)) if (v !== undefined) (rec as unknown as Record<string, unknown>)[k] = v;
  return rec;
}

/** Records from a script's flat list of HGETALL replies, each prefixed by its length. */
export function recordsFromFlat(flat: (string | number)[]): TaskRecord[] {
  const out: TaskRecord[] = [];
  for (let i = 0; i < flat.length; ) {
    const n = Number(flat[i]);
    out.push(recordFromHash(pairs(flat.slice(i + 1, i + 1 + n).map(String))));
    i += n + 1;
  }
  return out;
}

/** Turns a flat HGETALL reply into an object. */
export function pairs(flat: string[]): Record<string, string> {
  const out: Record<string, string> = Object.create(null); // field names are data
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i]!] = flat[i + 1]!;
  return out;
}
