// Completion callbacks: the caller's URL gets a signed event when its task ends and, for an email,
// when its delivery status changes. Each callback is itself a task (tasks/callback.ts), enqueued
// under an id derived from `<task id>.<event>`, so it is durable, retried, sent once, and its
// state is what the parent task reports under `callbacks`.
import { CALLBACK_TASK, type CallbackEvent, type CallbackSpec } from "./callback-option.ts";
import { enqueueInternal } from "./enqueue.ts";
import { idempotentTaskId } from "./ids.ts";
import type { Relay } from "./relay.ts";
import type { TaskStore } from "./store/index.ts";
import { redisIo } from "./store/lua.ts";
import type { TaskRecord, TaskState } from "./store/record.ts";

/** What the caller's URL receives. */
export interface CallbackBody {
  type: CallbackEvent;
  id: string;
  task: string;
  state: string;
  attempts: number;
  result?: unknown;
  error?: TaskRecord["error"];
  delivery?: TaskRecord["delivery"];
  /** Set instead of `result` when the result is too large to travel (read it with `GET /v1/tasks/:id`). */
  resultOmitted?: true;
  /** When it happened (the task finished, or Resend reported the status). */
  at: string;
}

/** Largest event sent with its result (bytes of JSON); a larger result stays on the task. */
const MAX_EVENT_BYTES = 64_000;

/** The event about a task, from its record (after the change it reports). */
export function callbackBody(type: CallbackEvent, rec: TaskRecord): CallbackBody {
  const at = type.startsWith("email.") ? rec.delivery?.at : rec.finishedAt;
  const body: CallbackBody = {
    type,
    id: rec.id,
    task: rec.task,
    state: rec.state,
    attempts: rec.attempts,
    ...(rec.state === "succeeded" && rec.result !== undefined ? { result: rec.result } : {}),
    ...(rec.state !== "succeeded" && rec.error ? { error: rec.error } : {}),
    ...(rec.delivery ? { delivery: rec.delivery } : {}),
    at: at ?? new Date().toISOString(),
  };
  // The event travels as a QStash message (1 MB on the free plan): a large result stays behind.
  if (body.result !== undefined && new TextEncoder().encode(JSON.stringify(body)).length > MAX_EVENT_BYTES) {
    delete body.result;
    body.resultOmitted = true;
  }
  return body;
}

/**
 * The `webhook-id` of an event: `<task id>.<event>`, the same on every retry so receivers drop
 * duplicates. A task re-enqueued through retry or replay (generation n) ends again with `.g<n>`.
 */
export function webhookIdOf(rec: Pick<TaskRecord, "id" | "generation">, type: CallbackEvent): string {
  return `${rec.id}.${type}${rec.generation ? `.g${rec.generation}` : ""}`;
}

/** The idempotency scope of callback tasks (":" never occurs in an API key name). */
export const CALLBACK_SCOPE = ":callback";

/** A callback as the parent task reports it. */
export interface CallbackStatus {
  event: CallbackEvent;
  /** pending, retrying, delivered, failed or cancelled: the callback task's state. */
  status: string;
  attempts: number;
  lastError?: string;
  /** The callback's own task id (`GET /v1/tasks/:id` shows its every attempt). */
  id: string;
}

const STATUS: Record<string, string> = { succeeded: "delivered", failed: "failed", cancelled: "cancelled", retrying: "retrying" };

/** The record with `callbacks`, the callbacks made so far as their own records tell (one round trip). */
export async function withCallbacks(store: TaskStore, rec: TaskRecord): Promise<TaskRecord> {
  return rec.callback ? { ...rec, callbacks: await callbackStatuses(store, rec) } : rec;
}

async function callbackStatuses(store: TaskStore, rec: TaskRecord): Promise<CallbackStatus[]> {
  const spec = rec.callback;
  if (!spec) return [];
  const ids = await Promise.all(spec.events.map((e) => idempotentTaskId(CALLBACK_SCOPE, webhookIdOf(rec, e))));
  const p = store.redis.pipeline();
  for (const id of ids) p.hmget(store.recKey(id), "state", "attempts", "error");
  // The client runs without automatic deserialization, so each HMGET arrives as a plain list.
  const rows = await redisIo(() => p.exec<(string | null)[][]>());
  const out: CallbackStatus[] = [];
  rows.forEach(([state, attempts, raw], i) => {
    if (!state) return;
    const error = raw ? (JSON.parse(raw) as { message?: string }).message : undefined;
    out.push({
      event: spec.events[i]!,
      status: STATUS[state] ?? "pending",
      attempts: Number(attempts ?? 0),
      ...(error ? { lastError: error } : {}),
      id: ids[i]!,
    });
  });
  return out;
}

/**
 * Tells the task's caller about `type` when it asked for it: enqueues the callback task under the
 * key `<task id>.<event>`, so calling this again (a redelivery, a replayed event) sends nothing
 * more. Throws when the callback could not be enqueued (QStash or Redis unreachable).
 */
export async function notifyCaller(relay: Relay, rec: TaskRecord, type: CallbackEvent): Promise<void> {
  const spec = rec.callback;
  if (!spec?.events.includes(type)) return;
  const webhookId = webhookIdOf(rec, type);
  await enqueueInternal(relay, CALLBACK_TASK, { url: spec.url, webhookId, event: callbackBody(type, rec) }, CALLBACK_SCOPE, webhookId);
}

/** {@link notifyCaller} for a task known by id (its record read first, only when asked for). */
export async function notifyCallerOf(relay: Relay, id: string, type: CallbackEvent, spec?: CallbackSpec): Promise<void> {
  if (spec && !spec.events.includes(type)) return;
  const rec = await relay.store.get(id);
  if (rec) await notifyCaller(relay, rec, type);
}

/** {@link notifyCaller} for tasks that just ended together (a batch's items): one round trip finds those that asked. */
export async function notifyEnded(relay: Relay, ended: { id: string; state: TaskState }[]): Promise<void> {
  if (ended.length === 0) return;
  const p = relay.store.redis.pipeline();
  for (const e of ended) p.hget(relay.store.recKey(e.id), "callback");
  const specs = await redisIo(() => p.exec<(string | null)[]>());
  await Promise.all(
    ended.map((e, i) =>
      specs[i] ? notifyCallerOf(relay, e.id, `task.${e.state}` as CallbackEvent, JSON.parse(specs[i]!) as CallbackSpec) : undefined,
    ),
  );
}
