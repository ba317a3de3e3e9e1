import * as v from "valibot";
import { isBatched, joinBatch } from "./batch.ts";
import type { CallbackEvent } from "./callback-option.ts";
import { notifyCallerOf } from "./callbacks.ts";
import { enqueueFollowUp } from "./enqueue.ts";
import { ApiError, messageOf, PermanentError, RateLimited, RetryLater } from "./errors.ts";
import { taskKv } from "./kv.ts";
import { mailerFor } from "./mail.ts";
import type { TaskMessage } from "./messages.ts";
import { codesFor } from "./one-time-codes.ts";
import { mayWait, waitForRoom } from "./rate-limit-wait.ts";
import { type AnyTask, checkPayload } from "./registry.ts";
import { type Relay, taskEnv } from "./relay.ts";
import { retryWaitMs } from "./retry-delay.ts";
import { dayReport } from "./stats.ts";
import { suppressionsOf } from "./store/delivery.ts";
import { FINAL_STATES, type TaskError, type TaskState } from "./store/record.ts";
import type { Logger, TaskContext } from "./task.ts";

/** A delivery as QStash made it. */
export interface Delivery {
  message: TaskMessage;
  messageId: string;
  /** `Upstash-Retried`: attempts QStash already made for this message. */
  retried: number;
}

/** How to answer QStash. */
export interface Outcome {
  status: 200 | 489 | 500 | 503;
  headers: Record<string, string>;
  body: Record<string, unknown>;
}

/** A claim outlives the task's timeout by this much before another delivery may take over (ms). */
export const LEASE_GRACE_MS = 15_000;
/** The last instant a JavaScript Date can hold (ms since the epoch). */
const MAX_DATE_MS = 8.64e15;
/** Results larger than this (bytes of JSON) fail the task instead of bloating Redis. */
const MAX_RESULT_BYTES = 1_000_000;

/**
 * Runs one delivery effectively once: claim (one Redis round trip), run, record the outcome
 * (one more). A finished task's redelivery is acknowledged; a concurrent copy is told to retry.
 */
export async function runDelivery(relay: Relay, d: Delivery): Promise<Outcome> {
  const { store, registry } = relay;
  const m = d.message;
  const def = registry.get(m.task);
  let env: unknown;
  try {
    env = def ? taskEnv(relay, def) : undefined;
  } catch (err) {
    // The task's variables are missing: touch nothing, let QStash retry once they are fixed.
    if (!(err instanceof ApiError)) throw err;
    console.error(err.message);
    return { status: 503, headers: { "Retry-After": String(err.retryAfter) }, body: { id: m.id, ...err.toJSON() } };
  }
  // A coalesced task's delivery only joins its outbox; its batch's flush runs it (src/batch.ts).
  // A task with redacted paths runs on its own: a batch reads payloads from the records.
  if (isBatched(def) && !relay.config.unbatched.includes(def.name) && !m.redact?.length) {
    const joined = await joinBatch(relay, d, def);
    if (joined) return joined;
  }
  const started = Date.now();
  // A record recreated from the message keeps the task's secrets out as an enqueued one does.
  const redact = [...new Set([...(def?.redact ?? []), ...(m.redact ?? [])])];
  const claim = await store.claim({ ...m, state: "queued", redact }, d.messageId, started, m.options.timeout * 1000 + LEASE_GRACE_MS);
  // A finished task's redelivery makes sure its caller was told (a no-op when it was).
  if (claim.kind === "skip")
    return (await tell(relay, m, claim.state)) ?? { status: 200, headers: {}, body: { id: m.id, skipped: claim.state } };
  if (claim.kind === "stale") return { status: 200, headers: {}, body: { id: m.id, skipped: "payload differs from the task's" } };
  if (claim.kind === "busy") {
    const after = Math.max(1, Math.ceil(claim.retryInMs / 1000));
    return { status: 503, headers: { "Retry-After": String(after) }, body: { id: m.id, busy: true } };
  }
  const attempt = claim.attempt;
  const log = logger(m.id, m.task, attempt);
  // Attempts earlier messages of this task spent (before a rate-limit wait) count too.
  const finalAttempt = (m.spent ?? 0) + d.retried >= m.options.retries;

  let result: unknown;
  let failure: unknown;
  if (!def) {
    failure = new PermanentError(`no task named "${m.task}" is registered`, "unknown_task");
  } else {
    const input = await checkPayload(def, m.payload, env);
    if (!input.ok) {
      failure = new PermanentError(
        `payload no longer matches the schema: ${input.issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`,
        "invalid_payload",
      );
    } else {
      const time = attemptTime(started, m.options.timeout);
      const ctx = context(relay, def, env, d, attempt, time.signal, log);
      try {
        result = await time.run(() => def.run(input.output, ctx));
      } catch (err) {
        failure = err;
      }
    }
  }

  let resultJson: string | undefined;
  if (failure === undefined) ({ json: resultJson, failure } = storedResult(result));

  const now = Date.now();
  // A final outcome may also replace `failed`: QStash's failure callback can land while a
  // duplicate delivery of this same attempt is still running. The attempt fence keeps it exact.
  const final = { from: ["running", "failed"] as TaskState[], at: now, attempt };
  const base = { from: ["running"] as TaskState[], at: now, attempt };
  const ttl = m.options.resultTtl;
  if (failure === undefined) {
    const fields: Record<string, string> = resultJson === undefined ? {} : { result: resultJson };
    const t = await store.transition(m.id, { ...final, to: "succeeded", fields }, ttl);
    log.info("succeeded", { ms: now - started });
    const told = t.kind === "ok" ? await tell(relay, m, "succeeded") : undefined;
    return told ?? { status: 200, headers: {}, body: { id: m.id, state: "succeeded" } };
  }

  const error = describe(failure);
  if (failure instanceof RateLimited && mayWait(m.waited, failure.afterSeconds)) {
    if (await waitForRoom(relay, m, { retried: d.retried, attempt }, failure, error, now)) {
      log.warn("rate limited: waiting for room without spending an attempt", { after: failure.afterSeconds });
      return { status: 200, headers: {}, body: { id: m.id, state: "retrying", error } };
    }
  }
  const retryAfter = failure instanceof RetryLater ? failure.afterSeconds : undefined;
  if (!error.retryable || finalAttempt) {
    const t = await store.transition(m.id, { ...final, to: "failed", error, fields: { error: JSON.stringify(error) } }, ttl);
    log.error("failed", { code: error.code, message: error.message });
    const told = t.kind === "ok" ? await tell(relay, m, "failed") : undefined;
    if (told) return told;
    // 489 stops QStash; a retryable error on the last attempt lets QStash finish its own books.
    return error.retryable
      ? { status: 500, headers: {}, body: { id: m.id, state: "failed", error } }
      : { status: 489, headers: { "Upstash-NonRetryable-Error": "true" }, body: { id: m.id, state: "failed", error } };
  }
  const fields: Record<string, string | number> = { error: JSON.stringify(error) };
  // A wait past the last date JavaScript can hold (a receiver's absurd Retry-After) goes on to
  // QStash but is not recorded: the record's dates must stay readable.
  const afterMs = retryAfter !== undefined && now + retryAfter * 1000 <= MAX_DATE_MS ? retryAfter * 1000 : undefined;
  if (afterMs !== undefined) fields.runAt = now + afterMs;
  // When the next attempt is due, as far as it is known (QStash does not say).
  const waitMs = retryAfter !== undefined ? afterMs : m.options.retryDelay ? retryWaitMs(m.options.retryDelay, d.retried) : undefined;
  fields.nextAt = waitMs === undefined ? "" : now + waitMs;
  await store.transition(m.id, { ...base, to: "retrying", error, fields });
  log.warn("will retry", { code: error.code, message: error.message, retryAfter });
  return retryAfter !== undefined
    ? { status: 503, headers: { "Retry-After": String(retryAfter) }, body: { id: m.id, state: "retrying", error } }
    : { status: 500, headers: {}, body: { id: m.id, state: "retrying", error } };
}

/**
 * Tells the task's caller it ended, when it asked to be told. If the callback cannot be enqueued
 * now, QStash is asked to come back (503); the redelivery finds the task finished and tries again.
 */
async function tell(relay: Relay, m: TaskMessage, state: TaskState): Promise<Outcome | undefined> {
  if (!m.callback || !FINAL_STATES.includes(state)) return undefined;
  const type = `task.${state}` as CallbackEvent;
  try {
    await notifyCallerOf(relay, m.id, type, m.callback);
    return undefined;
  } catch (err) {
    console.error(`[celeriac] could not enqueue the ${type} callback of ${m.id}: ${messageOf(err)}`);
    return { status: 503, headers: { "Retry-After": "5" }, body: { id: m.id, state, callback: "not enqueued yet" } };
  }
}

export class TimeoutError extends Error {
  override name = "TimeoutError";
}

/**
 * An attempt's time, counted from its claim (`claimedAt`, ms), not from when its work starts: its
 * signal aborts (TimeoutError) at the claim plus the timeout, so before QStash stops waiting for
 * the delivery (TIMEOUT_GRACE_S later) and before the claim lapses and another delivery may take
 * the task over (LEASE_GRACE_MS later), however long the reply to the claim or the payload check
 * took under load. `run` runs the work under it, and none at all once the time is up: a delivery
 * that lost its claim calls no provider. (Counted from the start of the work, a delivery whose
 * claim's reply came late sent its webhook after another delivery had taken the task over and sent
 * it: test/claim-fence.test.ts.)
 */
export function attemptTime(claimedAt: number, timeoutS: number) {
  const controller = new AbortController();
  const signal = controller.signal;
  const abort = () => controller.abort(new TimeoutError(`timed out after ${timeoutS} s`));
  const left = claimedAt + timeoutS * 1000 - Date.now();
  const timer = left > 0 ? setTimeout(abort, left) : undefined;
  if (left <= 0) abort();
  return {
    signal,
    async run<T>(work: () => Promise<T>): Promise<T> {
      try {
        signal.throwIfAborted();
        const aborted = new Promise<never>((_, reject) => signal.addEventListener("abort", () => reject(signal.reason), { once: true }));
        return await Promise.race([work(), aborted]);
      } finally {
        if (timer !== undefined) clearTimeout(timer);
      }
    },
  };
}

/**
 * A result as it is stored: JSON. One that cannot be (a cycle, a BigInt, a function) or is too
 * large fails for good rather than running the task's side effects again.
 */
export function storedResult(result: unknown): { json?: string; failure?: PermanentError } {
  if (result === undefined) return {};
  let json: string | undefined;
  try {
    json = JSON.stringify(result);
  } catch (err) {
    return { failure: new PermanentError(`result is not JSON: ${messageOf(err)}`, "result_not_json") };
  }
  if (json === undefined) return { failure: new PermanentError("result is not JSON", "result_not_json") };
  if (new TextEncoder().encode(json).length > MAX_RESULT_BYTES) {
    return { failure: new PermanentError(`result is larger than ${MAX_RESULT_BYTES} bytes of JSON`, "result_too_large") };
  }
  return { json };
}

/** Maps a thrown value to the recorded error: permanent unless it can succeed later. */
export function describe(err: unknown): TaskError {
  const d = (err as { details?: unknown } | null)?.details;
  const details = d && typeof d === "object" && !Array.isArray(d) ? { details: d as Record<string, unknown> } : {};
  if (err instanceof PermanentError) return { code: err.code, message: err.message, retryable: false, ...details };
  if (err instanceof RetryLater) return { code: err.code, message: err.message, retryable: true, ...details };
  if (err instanceof TimeoutError) return { code: "timeout", message: err.message, retryable: true };
  if (err instanceof v.ValiError) return { code: "invalid", message: err.message, retryable: false };
  // Any other throw is retried; a string `code` on it (e.g. "http_503") is kept for the record.
  const own = (err as { code?: unknown } | null)?.code;
  const code = typeof own === "string" && own ? own : "error";
  return { code, message: messageOf(err), retryable: true, ...details };
}

function context(
  relay: Relay,
  def: AnyTask,
  env: unknown,
  d: Delivery,
  attempt: number,
  signal: AbortSignal,
  log: Logger,
): TaskContext<any> {
  const m = d.message;
  let followUps = 0;
  return {
    id: m.id,
    attempt,
    messageId: d.messageId,
    ...(m.scheduleId ? { scheduleId: m.scheduleId } : {}),
    signal,
    log,
    env,
    mail: mailerFor(relay.services.resend, m.id, (addresses) => suppressionsOf(relay.store, addresses)),
    // Checked where the connection is made: calls on a caller's behalf never reach a private
    // address, unless the task allows the host (`allowHosts`).
    fetch: ((input: RequestInfo, init?: RequestInit) =>
      relay.outbound(def.allowHosts?.(env) ?? [])(input, { signal, ...init })) as typeof fetch,
    // A follow-up is keyed by this task and its order within the run, so a retry of this task
    // finds the follow-ups its earlier attempt made instead of enqueueing them again.
    enqueue: async (task, payload, options = {}) => {
      const idempotencyKey = options.idempotencyKey ?? `${m.id}/enqueue/${followUps++}`;
      const e = await enqueueFollowUp(relay, task.name, payload, { ...options, idempotencyKey });
      return { id: e.id, state: e.state, runAt: e.runAt };
    },
    kv: taskKv(relay.store, def.name),
    codes: codesFor(relay.services.redis, relay.store.prefix, def.name, m.id),
    stats: { day: (date) => dayReport(relay.store, date) },
  };
}

export function logger(id: string, task: string, attempt: number): Logger {
  const line = (level: string, message: string, data?: Record<string, unknown>) =>
    `[celeriac] ${level} ${task} ${id} attempt ${attempt}: ${message}${data ? ` ${JSON.stringify(data)}` : ""}`;
  return {
    info: (msg, data) => console.log(line("info", msg, data)),
    warn: (msg, data) => console.warn(line("warn", msg, data)),
    error: (msg, data) => console.error(line("error", msg, data)),
  };
}
