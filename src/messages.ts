import * as v from "valibot";
import { CALLBACK_EVENTS } from "./callback-option.ts";
import { scheduledRunId, TASK_ID } from "./ids.ts";
import { MAX_DELAY_S } from "./options.ts";

// What QStash hands the delivery routes: celeriac's own message bodies (a published task or a
// schedule's run) and QStash's failure-callback envelope around one.

/** The latest instant a Date can hold (ms): a time beyond it is no time at all. */
const MAX_TIME_MS = 8.64e15;
/** Longest wait a message may carry between its creation and its due time: enqueue's limit plus a week of retries. */
const MAX_SPAN_MS = (MAX_DELAY_S + 7 * 86_400) * 1000;
const time = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(MAX_TIME_MS));

/** The QStash message body of a task: everything a delivery needs, so Redis is never the source of truth. */
const Message = v.pipe(
  v.object({
    v: v.literal(1),
    id: v.pipe(v.string(), v.regex(TASK_ID)),
    task: v.string(),
    payload: v.unknown(),
    // Ranges as enqueue allows them: a message QStash signed is still checked before it runs.
    options: v.object({
      retries: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(20)),
      timeout: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(7_200)),
      resultTtl: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(10 * 365 * 86_400)),
      retryDelay: v.optional(v.string()),
    }),
    createdAt: time,
    runAt: time,
    idempotencyKey: v.optional(v.string()),
    scheduleId: v.optional(v.string()),
    /** Payload paths the record must not keep (the task's `redact` and the enqueue's). */
    redact: v.optional(v.pipe(v.array(v.string()), v.maxLength(50))),
    /** The record's generation this message belongs to (see `POST /v1/tasks/:id/retry`). */
    gen: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0))),
    /**
     * A re-check of a task QStash gave up on while an attempt held it (see `giveUp`): how many
     * re-checks were spent before it, and the record's attempts when it was published.
     */
    /** Attempts earlier messages of this task spent on real errors (a rate-limit wait publishes a new message). */
    spent: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0))),
    /** Seconds this task already waited for rate limits. */
    waited: v.optional(v.pipe(v.number(), v.minValue(0))),
    recheck: v.optional(
      v.object({
        n: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(100)),
        attempts: v.pipe(v.number(), v.integer(), v.minValue(0)),
      }),
    ),
    /** Where the caller wants to hear how it went (src/callbacks.ts). */
    callback: v.optional(v.object({ url: v.string(), events: v.array(v.picklist(CALLBACK_EVENTS)) })),
  }),
  v.check((m) => Math.abs(m.runAt - m.createdAt) <= MAX_SPAN_MS, "runAt is further from createdAt than any enqueue allows"),
);
export type TaskMessage = v.InferOutput<typeof Message>;

/** The QStash message body of a batch flush: which outbox, which window; see src/batch.ts. */
const Flush = v.object({
  v: v.literal(1),
  flush: v.object({ task: v.string(), key: v.string(), window: v.pipe(v.string(), v.regex(/^[a-z0-9]{1,40}$/)) }),
  spent: v.optional(v.number()),
  waited: v.optional(v.number()),
  /** A re-check of a flush QStash gave up on (see `failGivenUpFlush`): re-checks spent before it, the batch's runs when it was published. */
  recheck: v.optional(
    v.object({
      n: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(100)),
      attempt: v.pipe(v.number(), v.integer(), v.minValue(0)),
    }),
  ),
});
export type FlushMessage = v.InferOutput<typeof Flush>;

/** Parses a flush message body; throws when it is not one. */
export const flushOf = (body: string): FlushMessage => v.parse(Flush, JSON.parse(body));

/** The QStash message body of a scheduled run: no task id, one is derived per firing. */
const Scheduled = v.object({
  v: v.literal(1),
  schedule: v.string(),
  task: v.string(),
  payload: v.unknown(),
  options: Message.pipe[0].entries.options,
});
export type ScheduledMessage = v.InferOutput<typeof Scheduled>;

const FailureCallback = v.object({
  status: v.optional(v.number()),
  retried: v.optional(v.number()),
  sourceMessageId: v.optional(v.string()),
  sourceBody: v.string(),
  dlqId: v.optional(v.string()),
});

/** QStash's failure callback: what it last saw of the message it gave up on. */
export type FailureCallback = v.InferOutput<typeof FailureCallback>;

/**
 * The task a delivery carries: a published task as it is, a scheduled run with an id derived
 * from its message id (stable across that message's retries). Throws when it is neither.
 */
export async function taskOf(body: string, messageId: string, now: number): Promise<TaskMessage> {
  const raw = JSON.parse(body);
  const scheduled = v.safeParse(Scheduled, raw);
  if (!scheduled.success) return v.parse(Message, raw);
  const s = scheduled.output;
  return {
    v: 1,
    id: await scheduledRunId(messageId),
    task: s.task,
    payload: s.payload,
    options: s.options,
    createdAt: now,
    runAt: now,
    scheduleId: s.schedule,
  };
}

/** A failure callback and the task it is about, or null when it is not one of celeriac's. */
export async function failureOf(body: string, now: number): Promise<{ callback: FailureCallback; task: TaskMessage } | null> {
  try {
    const callback = v.parse(FailureCallback, JSON.parse(body));
    return { callback, task: await taskOf(fromBase64(callback.sourceBody), callback.sourceMessageId ?? "", now) };
  } catch {
    return null;
  }
}

/** A failure callback about a batch flush, or null when it is about something else. */
export function flushFailureOf(body: string): { callback: FailureCallback; flush: FlushMessage } | null {
  try {
    const callback = v.parse(FailureCallback, JSON.parse(body));
    return { callback, flush: flushOf(fromBase64(callback.sourceBody)) };
  } catch {
    return null;
  }
}

/** Decodes base64 as UTF-8 bytes (bare `atob` would garble non-ASCII text). */
const fromBase64 = (b64: string) => new TextDecoder().decode(Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0)));
