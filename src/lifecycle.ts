import { keepWaiting, retryingIn } from "./batch.ts";
import { notifyCaller, notifyCallerOf } from "./callbacks.ts";
import { SCHEDULED_AFTER_MS } from "./enqueue-core.ts";
import { ApiError, messageOf, unavailable } from "./errors.ts";
import type { FailureCallback, TaskMessage } from "./messages.ts";
import { cancelMessages, publish } from "./queue.ts";
import { republishWait, supersedingWait } from "./rate-limit-wait.ts";
import { deliveryFlowControl, type Relay } from "./relay.ts";
import { noteDlq } from "./store/dead.ts";
import type { TaskRecord, TaskState } from "./store/record.ts";

/** States a task can be cancelled from. */
export const CANCELLABLE: readonly TaskState[] = ["queued", "scheduled", "retrying"];
/** States a task can be retried (re-enqueued) from. */
export const RETRYABLE: readonly TaskState[] = ["failed", "cancelled"];
/** Room beyond a task's due time for a late delivery to still meet its record (s). */
const LATE_DELIVERY_S = 86_400;

/**
 * Cancels a task that has not started: records `cancelled` (so a delivery that still arrives is
 * acknowledged without running), then cancels its pending QStash message. Null for an unknown id.
 */
export async function cancelTask(relay: Relay, id: string): Promise<TaskRecord | null> {
  const rec = await relay.store.get(id);
  if (!rec) return null;
  if (rec.state === "cancelled") {
    // Repeated (perhaps after a 503 below): make sure the caller was told.
    await notifyCaller(relay, rec, "task.cancelled");
    return rec;
  }
  const batch = await retryingIn(relay, rec);
  if (batch) {
    throw new ApiError(409, {
      code: "not_cancellable",
      message: `task ${id} is retrying in batch ${batch}, whose call may already have sent it, so it can no longer be cancelled`,
    });
  }
  // The record must outlive the message it guards, even when it is due months from now.
  const dueIn = Math.ceil((Date.parse(rec.runAt) - Date.now()) / 1000);
  const ttl = Math.max(rec.options.resultTtl, dueIn + LATE_DELIVERY_S);
  const t = await relay.store.transition(id, { from: CANCELLABLE, to: "cancelled", at: Date.now() }, ttl);
  if (t.kind === "missing") return null;
  if (t.kind === "conflict") {
    const state = t.state;
    throw new ApiError(409, {
      code: "not_cancellable",
      message: `task ${id} is ${state}; only ${CANCELLABLE.join(", ")} tasks can be cancelled`,
    });
  }
  // The record is what counts; a message QStash still holds only meets the cancelled record.
  await cancelMessages(relay.services.qstash, id).catch((err) =>
    console.warn(`[celeriac] task ${id} is cancelled, but its QStash message was not: ${messageOf(err)}`),
  );
  const cancelled = await relay.store.get(id);
  if (cancelled) await notifyCaller(relay, cancelled, "task.cancelled");
  return cancelled;
}

/**
 * Re-enqueues a failed or cancelled task under the same id, keeping its history. The record's
 * generation goes up, so the failure callback of the earlier message can no longer fail it. A
 * cancelled task that was due later keeps its due time (`scheduled`, `runAt` unchanged); a
 * failed one, or one whose time has come, runs now.
 */
export async function retryTask(relay: Relay, id: string): Promise<TaskRecord | null> {
  const rec = await relay.store.get(id);
  if (!rec) return null;
  if (rec.redacted?.length && RETRYABLE.includes(rec.state)) {
    // The record never held these values (`redact`), so it cannot send the task again as it was.
    throw new ApiError(409, {
      code: "payload_redacted",
      message: `task ${id} cannot be retried: its payload held redacted values (${rec.redacted.join(", ")}); enqueue it again with them`,
    });
  }
  const now = Date.now();
  const gen = (rec.generation ?? 0) + 1;
  const due = Date.parse(rec.runAt);
  const keepDue = rec.state === "cancelled" && due - now > SCHEDULED_AFTER_MS;
  const runAt = keepDue ? due : now;
  const to: TaskState = keepDue ? "scheduled" : "queued";
  const t = await relay.store.transition(
    id,
    { from: RETRYABLE, to, at: now, fields: { runAt, error: "", gen, dlqId: "", discardedAt: "" } },
    rec.options.resultTtl + LATE_DELIVERY_S + Math.ceil((runAt - now) / 1000),
  );
  if (t.kind === "missing") return null;
  if (t.kind === "conflict") {
    const state = t.state;
    throw new ApiError(409, {
      code: "not_retryable",
      message: `task ${id} is ${state}; only ${RETRYABLE.join(", ")} tasks can be retried`,
    });
  }
  const def = relay.registry.get(rec.task);
  // Read back before publishing: once published, the delivery may already be running.
  const queued = await relay.store.get(id);
  try {
    await publish(relay.services.qstash, relay.config, [
      {
        message: {
          v: 1,
          id,
          task: rec.task,
          payload: rec.payload,
          options: rec.options,
          createdAt: now,
          runAt,
          gen,
          ...(rec.idempotencyKey ? { idempotencyKey: rec.idempotencyKey } : {}),
          ...(rec.callback ? { callback: rec.callback } : {}),
        },
        ...(def?.flowControl ? { flowControl: deliveryFlowControl(relay, def) } : {}),
      },
    ]);
  } catch (err) {
    // Put the record back as it was (uncounted: it never really changed), so the caller can retry.
    await relay.store.transition(
      id,
      {
        from: [to],
        to: t.from,
        at: Date.now(),
        uncounted: true,
        fields: { error: rec.error ? JSON.stringify(rec.error) : "", gen: gen - 1, dlqId: rec.dlqId ?? "" },
      },
      rec.options.resultTtl,
    );
    throw unavailable("qstash", err);
  }
  // The task runs again from a new message: QStash's dead letter of the old one is spent.
  if (rec.dlqId) await deleteDlq(relay, rec.dlqId);
  return queued;
}

/** Re-checks one generation of a task gets when QStash gave up while an attempt held it. @default 3 */
export const MAX_RECHECKS = 3;

/** What the failure callback did: recorded the failure, re-checks a cut-off attempt, or nothing. */
export type GiveUp = "failed" | "rechecking" | "ignored";

/**
 * QStash gave up on a task's message (its failure callback). The task has failed unless it is
 * already final, was re-enqueued since (another generation), waits for a rate limit under a
 * later message (which QStash did not give up on), waits in its batch's outbox or retries in a
 * batch (whose flush runs it) — or an attempt of it is `running`.
 * Then QStash's last attempts only met that attempt's claim, and whether its side effect happened
 * is not known here: the worker may have sent the email and died before recording it. So the
 * failure is not guessed: the task's message is published once more, due when the claim lapses. A duplicate still running records its own outcome meanwhile (the re-check
 * then finds the task done); after a crash the re-check runs the task again under the same
 * idempotency keys, which confirms an effect that happened (Resend answers the first send) or
 * makes it, and records what really happened. A task whose attempts keep dying (an isolate
 * killed every time) gets {@link MAX_RECHECKS} re-checks; then it fails, its outcome stated unknown.
 */
export async function giveUp(relay: Relay, m: TaskMessage, cb: FailureCallback, now = Date.now()): Promise<GiveUp> {
  const [rec, wait] = await Promise.all([relay.store.get(m.id), supersedingWait(relay, m)]);
  if (!rec || (rec.generation ?? 0) !== (m.gen ?? 0)) return "ignored";
  // A rate-limit wait's message holds the task, not this one: no attempt ran since the wait, or
  // one of another message did (this message went on only if the wait's publish failed).
  const waiting = wait && rec.attempts === wait.attempt;
  if (wait && (waiting || (cb.sourceMessageId && rec.messageId && rec.messageId !== cb.sourceMessageId))) {
    // Nothing to fail. While the task still waits, the wait's message must exist (published
    // again; QStash deduplicates it).
    if (waiting && rec.state === "retrying") {
      try {
        await republishWait(relay, m, wait, cb.retried ?? 0, Date.parse(rec.runAt), now);
      } catch (err) {
        throw unavailable("qstash", err); // 503: QStash calls back again
      }
    }
    // The task goes on under another message: QStash's dead letter of this one is spent.
    if (cb.dlqId) await deleteDlq(relay, cb.dlqId);
    return "ignored";
  }
  // A batched task waiting in its outbox, or retrying in a batch whose flush retries its call
  // with the task in it: that flush, not this message, runs it (and QStash giving up on the flush
  // fails it: failGivenUpFlush). Failed here, it would still be sent by that retry.
  if (CANCELLABLE.includes(rec.state) && ((await keepWaiting(relay, rec)) || (await retryingIn(relay, rec)))) {
    if (cb.dlqId) await deleteDlq(relay, cb.dlqId);
    return "ignored";
  }
  // A re-check counts once it started an attempt of its own (the record's attempts moved on since
  // it was published) that died too; one that only met the same claim again (it came early) does not.
  const rechecks = (m.recheck?.n ?? 0) + (m.recheck && rec.attempts > m.recheck.attempts ? 1 : 0);
  if (rec.state === "running" && rechecks < MAX_RECHECKS) {
    const lapse = rec.leaseUntil ? Date.parse(rec.leaseUntil) : now;
    const def = relay.registry.get(m.task);
    try {
      await publish(relay.services.qstash, relay.config, [
        {
          // With the task's own retries: a passing error (a 500 from Resend) must not turn a
          // task whose email went out into a failure. When these run out too, the task is no
          // longer running, and the next failure callback records the failure.
          message: { ...m, createdAt: now, runAt: Math.max(now, lapse + 1_000), recheck: { n: rechecks, attempts: rec.attempts } },
          ...(def?.flowControl ? { flowControl: deliveryFlowControl(relay, def) } : {}),
          // QStash may call back twice for the message it gave up on: still one re-check.
          ...(cb.sourceMessageId ? { deduplicationId: `${m.id}-recheck-of-${cb.sourceMessageId}` } : {}),
        },
      ]);
    } catch (err) {
      throw unavailable("qstash", err); // 503: QStash calls back again
    }
    console.warn(
      `[celeriac] task ${m.id}: QStash gave up while attempt ${rec.attempts} held the task; re-checking it when its claim lapses`,
    );
    return "rechecking";
  }
  const stillHeld = rec.state === "running";
  const error = {
    code: "delivery_failed",
    message: `QStash gave up after ${(cb.retried ?? 0) + 1} attempt(s); last status ${cb.status ?? "none"}${cb.dlqId ? `; dlq id ${cb.dlqId}` : ""}${
      stillHeld ? `; attempt ${rec.attempts} still held the task after ${rechecks} re-checks, so whether it took effect is unknown` : ""
    }`,
    retryable: false,
  };
  // From `running` only once the re-checks are spent (a concurrent claim makes this a conflict);
  // an attempt still alive may yet record its real outcome over this failure.
  const t = await relay.store.transition(
    m.id,
    {
      from: stillHeld ? ["running"] : CANCELLABLE,
      to: "failed",
      at: now,
      gen: m.gen ?? 0,
      error,
      fields: { error: JSON.stringify(error) },
    },
    m.options.resultTtl,
  );
  // Failed here or by the runner (a permanent failure): either way QStash holds a dead letter.
  if (cb.dlqId) await noteDlq(relay.store, m.id, m.gen ?? 0, cb.dlqId);
  // Told here, or again (a no-op) when the runner already did: a lost callback enqueue recovers.
  if (m.callback && (t.kind === "ok" || (t.kind === "conflict" && t.state === "failed")))
    await notifyCallerOf(relay, m.id, "task.failed", m.callback);
  return t.kind === "ok" ? "failed" : "ignored";
}

/** Deletes a message from QStash's DLQ; one already gone is fine (logged, never thrown). */
export async function deleteDlq(relay: Relay, dlqId: string): Promise<boolean> {
  try {
    await relay.services.qstash.dlq.delete(dlqId);
    return true;
  } catch (err) {
    console.warn(`[celeriac] could not delete QStash dead letter ${dlqId}: ${messageOf(err)}`);
    return false;
  }
}
