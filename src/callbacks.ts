// Completion callbacks: the caller's URL gets a signed event when its task ends and, for an email,
// when its delivery status changes. Each callback is itself a task (tasks/callback.ts), enqueued
// under an id derived from `<task id>.<event>`, so it is durable, retried, sent once, and its
// state is what the parent task reports under `callbacks`.
import * as v from "valibot";
import type { Issue } from "./errors.ts";
import { idempotentTaskId } from "./ids.ts";
import { refuseTarget } from "./ssrf.ts";
import type { TaskStore } from "./store/index.ts";
import { redisIo } from "./store/lua.ts";
import type { TaskRecord } from "./store/record.ts";

export const CALLBACK_EVENTS = [
  "task.succeeded",
  "task.failed",
  "task.cancelled",
  "email.delivered",
  "email.bounced",
  "email.complained",
  "email.delivery_delayed",
] as const;
export type CallbackEvent = (typeof CALLBACK_EVENTS)[number];

/** Where a task's callbacks go and which events they carry. */
export interface CallbackSpec {
  url: string;
  events: CallbackEvent[];
}

/** Longest callback URL accepted (characters), as for the webhook task. */
const MAX_URL = 2_048;

/**
 * The `callback` enqueue option: a URL (every event), or `{ url, events }`.
 * @example "https://shop.example/hooks/celeriac"
 * @example { "url": "https://shop.example/hooks/celeriac", "events": ["task.failed", "email.bounced"] }
 */
export const CallbackOption = v.pipe(
  v.union(
    [
      v.string(),
      v.strictObject({
        url: v.string("callback.url must be a URL"),
        events: v.optional(
          v.pipe(
            v.array(v.picklist(CALLBACK_EVENTS, `callback.events may hold ${CALLBACK_EVENTS.join(", ")}`)),
            v.minLength(1, "callback.events must name at least one event"),
          ),
        ),
      }),
    ],
    "callback must be a URL or { url, events }",
  ),
  v.transform((c): CallbackSpec => (typeof c === "string" ? { url: c, events: [...CALLBACK_EVENTS] } : { url: c.url, events: c.events ?? [...CALLBACK_EVENTS] })),
);

/** Why a callback URL is refused (scheme, length, credentials, the SSRF guard), as issues on `path`. */
export function callbackIssues(spec: CallbackSpec, allowHosts: readonly string[], path: string): Issue[] {
  if (spec.url.length > MAX_URL) return [{ path, message: `the URL must be at most ${MAX_URL} characters` }];
  const why = refuseTarget(spec.url, allowHosts);
  return why ? [{ path, message: why }] : [];
}

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
  /** When it happened (the task finished, or Resend reported the status). */
  at: string;
}

/** The event about a task, from its record (after the change it reports). */
export function callbackBody(type: CallbackEvent, rec: TaskRecord): CallbackBody {
  const at = type.startsWith("email.") ? rec.delivery?.at : rec.finishedAt;
  return {
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

/** The callbacks a task has made so far, read from their own records (one round trip). */
export async function callbackStatuses(store: TaskStore, rec: TaskRecord & { callback?: CallbackSpec }): Promise<CallbackStatus[]> {
  const spec = rec.callback;
  if (!spec) return [];
  const ids = await Promise.all(spec.events.map((e) => idempotentTaskId(CALLBACK_SCOPE, webhookIdOf(rec, e))));
  const p = store.redis.pipeline();
  for (const id of ids) p.hmget(store.recKey(id), "state", "attempts", "error");
  const rows = await redisIo(() => p.exec<(Record<string, string | null> | null)[]>());
  const out: CallbackStatus[] = [];
  rows.forEach((row, i) => {
    if (!row?.state) return;
    const error = row.error ? (JSON.parse(row.error) as { message?: string }).message : undefined;
    out.push({
      event: spec.events[i]!,
      status: STATUS[row.state] ?? "pending",
      attempts: Number(row.attempts ?? 0),
      ...(error ? { lastError: error } : {}),
      id: ids[i]!,
    });
  });
  return out;
}
