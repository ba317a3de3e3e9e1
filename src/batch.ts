// Coalesced tasks: many deliveries, one provider call.
//
// A task with `batch: { maxSize, maxWaitMs, key }` and `runBatch` keeps every semantic of a task
// (its own id, record, state, attempts, result, error and history); only how its work is done
// changes:
//
// 1. Join. The task's delivery does not run it: one Lua call puts its id in the outbox of its
//    task and key (`<p>ob:<task>:<key>`) — atomically with the claim on the record, which stays
//    `queued` — and, when no flush is scheduled for the outbox, arms a window (a fresh, unique
//    id). The delivery that armed the window publishes its flush: a QStash message to
//    /qstash/flush, delayed by maxWaitMs, deduplicated on the window, paced by the task's flow
//    control (send-email: the provider's rate). Then the delivery is acknowledged.
//    A duplicate or concurrent delivery finds the id in the outbox (nothing joins twice) and
//    publishes the flush again, which QStash deduplicates: a delivery that died after arming but
//    before publishing is covered by QStash redelivering it.
// 2. Flush. The flush's first run pops up to maxSize waiting items that are due and fixes them,
//    in one Lua call, as the batch `<task>.<window>` (claiming each: `running`, attempt n, like
//    any run). Items still waiting get the next window's flush at once when a full batch is due,
//    else maxWaitMs after the earliest is due: a lone item waits at most maxWaitMs, and under
//    load each call carries as many items as are waiting, at the pace flow control allows.
// 3. Run. `runBatch(items, ctx)` makes one call; its side effects carry the batch id as their
//    idempotency key (Resend's Idempotency-Key), fixed before the first call. Each item's outcome
//    is recorded on its own record, fenced by its attempt, in one round trip: succeeded,
//    failed, or (a retryable error of that item alone) retrying and back in the outbox, scored by
//    when its retry is due (its Retry-After, else its retryDelay, as a task on its own would
//    wait): flushes before then pass it by, and the window armed for it (or any later flush that
//    leaves it waiting) is due when it is, so it is never stranded.
// 4. Retry. A whole call that fails retries the flush: the same QStash message finds its batch
//    as it was (same items, same body, same key, so a call whose answer was lost is answered from
//    Resend's idempotency memory and nothing is sent twice). A flush that crashed is redelivered
//    by QStash once its lease has passed and picks its items up again. A 429 reschedules the
//    flush as a new message after Retry-After without spending an attempt (src/rate-limit-wait.ts).
//    When QStash gives up on a flush that still holds items, its failure callback re-checks the
//    batch once its lease lapses (same batch id), as a task's does (failGivenUpFlush).
// A task stays on the per-task path (runDelivery's claim, side effects keyed by its id) when its
// payload has redacted paths (the flush reads payloads from the records) or when it was already
// attempted on its own (JOIN answers "solo"): moving it into a batch, with another key, could send twice.

import { notifyEnded } from "./callbacks.ts";
import { messageOf, PermanentError, RateLimited, RetryLater, unavailable } from "./errors.ts";
import { MAX_RECHECKS } from "./lifecycle.ts";
import { batchMailerFor } from "./mail.ts";
import type { FlushMessage } from "./messages.ts";
import { deliveryOptions, FLUSH_PATH, qstashDelay } from "./queue.ts";
import { mayWait, roomAfter } from "./rate-limit-wait.ts";
import { checkPayload } from "./registry.ts";
import { flowControlOf, type Relay, taskEnv } from "./relay.ts";
import { retryDelayExpression, retryWaitMs } from "./retry-delay.ts";
import { attemptTime, type Delivery, describe, LEASE_GRACE_MS, logger, type Outcome, storedResult } from "./runner.ts";
import { suppressionsOf } from "./store/delivery.ts";
import type { Transition, TransitionResult } from "./store/index.ts";
import { newWindow, Outbox, type TakenItem } from "./store/outbox.ts";
import { FINAL_STATES, type TaskError, type TaskState } from "./store/record.ts";
import type { BatchContext, BatchOutcome, TaskDefinition } from "./task.ts";

type Batched = TaskDefinition & Required<Pick<TaskDefinition, "batch" | "runBatch">>;

/** Whether a task coalesces its deliveries. */
export const isBatched = (def: TaskDefinition | undefined): def is Batched => !!def?.batch && !!def.runBatch;

const outboxes = new WeakMap<Relay["store"], Outbox>();
const outboxOf = (deps: Relay) => {
  let o = outboxes.get(deps.store);
  if (!o) outboxes.set(deps.store, (o = new Outbox(deps.store)));
  return o;
};

/** The outbox key of a payload: items with different keys never share a batch. */
function keyOf(def: Batched, payload: unknown): string {
  try {
    return def.batch.key?.(payload as never) ?? "";
  } catch {
    return ""; // a payload the key cannot read fails on its own when its batch checks it
  }
}

const batchIdOf = (task: string, window: string) => `${task}.${window}`;
const leaseMs = (def: TaskDefinition) => def.timeout * 1000 + LEASE_GRACE_MS;
const ok = (body: Record<string, unknown>): Outcome => ({ status: 200, headers: {}, body });

/** Publishes a window's flush; QStash deduplicates repeats of the same window (or `dedup`). */
async function publishFlush(
  deps: Relay,
  def: Batched,
  message: FlushMessage,
  delaySeconds: number,
  dedup = `flush.${batchIdOf(def.name, message.flush.window)}`,
): Promise<void> {
  const { config, services } = deps;
  const options = { retries: Math.max(0, def.retries - (message.spent ?? 0)), timeout: def.timeout, retryDelay: def.retryDelay };
  await services.qstash.publishJSON({
    url: config.publicUrl + FLUSH_PATH,
    body: message,
    ...deliveryOptions(config, def.name, options, flowControlOf(deps, def)),
    label: batchIdOf(def.name, message.flush.window),
    deduplicationId: dedup,
    ...(delaySeconds > 0 ? { delay: qstashDelay(delaySeconds) } : {}),
  });
}

/**
 * A batched task's delivery: join the outbox (its claim), and publish the flush if it armed one.
 * Null when the task was already attempted on its own: it stays on that path (runDelivery).
 */
export async function joinBatch(deps: Relay, d: Delivery, def: Batched): Promise<Outcome | null> {
  const m = d.message;
  const key = keyOf(def, m.payload);
  const now = Date.now();
  const r = await outboxOf(deps).join(`${def.name}:${key}`, { ...m, state: "queued" }, now, now, now + def.batch.maxWaitMs);
  if (r.kind === "solo") return null;
  if (r.kind === "skip") return ok({ id: m.id, skipped: r.state });
  if (r.kind === "stale") return ok({ id: m.id, skipped: "payload differs from the task's" });
  if (r.kind === "armed") {
    try {
      await publishFlush(deps, def, { v: 1, flush: { task: def.name, key, window: r.window } }, Math.max(0, r.at - now) / 1000);
    } catch (err) {
      // QStash redelivers this item, which finds itself in the outbox and publishes again.
      console.warn(`[celeriac] task ${m.id}: could not schedule its batch's flush: ${messageOf(err)}`);
      return { status: 503, headers: { "Retry-After": "1" }, body: { id: m.id, error: "flush_not_scheduled" } };
    }
  }
  return ok({ id: m.id, state: "queued", batch: batchIdOf(def.name, r.window) });
}

/** A flush's delivery: take the batch, run it once, record each item's own outcome. */
export async function runFlush(deps: Relay, d: { message: FlushMessage; messageId: string; retried: number }): Promise<Outcome> {
  const fm = d.message;
  const def = deps.registry.get(fm.flush.task);
  if (!isBatched(def)) {
    return { status: 489, headers: { "Upstash-NonRetryable-Error": "true" }, body: { error: `no batched task named "${fm.flush.task}"` } };
  }
  const batched = def;
  const batchId = batchIdOf(def.name, fm.flush.window);
  const outbox = outboxOf(deps);
  const outboxKey = `${def.name}:${fm.flush.key}`;
  const started = Date.now();
  const taken = await outbox.take(
    outboxKey,
    {
      window: fm.flush.window,
      batchId,
      messageId: d.messageId,
      maxSize: def.batch.maxSize,
      maxWaitMs: def.batch.maxWaitMs,
      itemLeaseMs: leaseMs(def),
      batchLeaseMs: leaseMs(def),
    },
    started,
  );
  if (taken.kind === "busy") {
    return {
      status: 503,
      headers: { "Retry-After": String(Math.max(1, Math.ceil(taken.retryInMs / 1000))) },
      body: { batch: batchId, busy: true },
    };
  }
  const log = logger(batchId, def.name, taken.attempt);
  // Items still waiting: their flush when the next window is due.
  const next = taken.next;
  // Its failure is awaited (and answered) only after the run: caught at once, as an unhandled
  // rejection meanwhile would end a Node or Deno process.
  const scheduled: Promise<{ err: unknown } | null> = next
    ? publishNext(deps, batched, fm.flush.key, next, started).then(
        () => null,
        (err: unknown) => ({ err }),
      )
    : Promise.resolve(null);
  const claimed = taken.items.filter((i) => i.attempt > 0);
  const recorded = claimed.length
    ? await runAndRecord(deps, batched, fm, d.retried, batchId, taken.attempt, taken.items, started, log)
    : ok({ batch: batchId, items: 0 });
  // A retry of this flush: the callers of items that ended in an earlier run may not have been
  // told yet (see recordAndTell).
  const earlier = taken.items.filter((i) => i.attempt === 0).map((i) => i.id);
  const told = earlier.length === 0 || (await tellEnded(deps, endedOf(earlier, await outbox.heldStates(outboxKey, batchId, earlier))));
  const unscheduled = await scheduled;
  if (unscheduled) {
    // The waiting items' flush must exist: retry this flush, which publishes it again.
    console.warn(`[celeriac] batch ${batchId}: could not schedule the next flush: ${messageOf(unscheduled.err)}`);
    await outbox.release(batchId);
    return { status: 503, headers: { "Retry-After": "1" }, body: { batch: batchId, error: "next_flush_not_scheduled" } };
  }
  return told ? recorded : retryToTell(deps, batchId);
}

/** Schedules the flush of the items still waiting after a batch was taken. */
function publishNext(deps: Relay, def: Batched, key: string, next: { window: string; at: number }, now: number) {
  return publishFlush(deps, def, { v: 1, flush: { task: def.name, key, window: next.window } }, Math.max(0, next.at - now) / 1000);
}

/**
 * Runs the batch once and records every claimed item's outcome in one round trip. Every item of
 * the batch goes into the call, claimed or not, so a retry's body (and idempotency key) is the
 * first call's; only claimed items get an outcome recorded.
 */
async function runAndRecord(
  deps: Relay,
  def: Batched,
  fm: FlushMessage,
  retried: number,
  batchId: string,
  attempt: number,
  items: TakenItem[],
  claimedAt: number,
  log: ReturnType<typeof logger>,
): Promise<Outcome> {
  const now0 = Date.now();
  // The payload is checked again where the work is, as `run` would: a bad one fails alone.
  const env = taskEnv(deps, def);
  const checked = await Promise.all(items.map((i) => checkPayload(def, i.payload, env)));
  const valid = items.flatMap((it, i) =>
    checked[i]!.ok ? [{ id: it.id, attempt: it.attempt, payload: (checked[i] as { output: unknown }).output }] : [],
  );
  let outcomes: BatchOutcome[] | undefined;
  let failure: unknown;
  if (valid.length) {
    const time = attemptTime(claimedAt, def.timeout);
    const ctx: BatchContext<any> = {
      batchId,
      attempt,
      signal: time.signal,
      log,
      mailBatch: batchMailerFor(deps.services.resend, `celeriac-batch/${batchId}`, (addresses) => suppressionsOf(deps.store, addresses)),
      fetch: ((input: RequestInfo, init?: RequestInit) => fetch(input, { signal: time.signal, ...init })) as typeof fetch,
      env,
    };
    try {
      outcomes = await time.run(() => def.runBatch(valid, ctx));
      if (!Array.isArray(outcomes) || outcomes.length !== valid.length) {
        throw new PermanentError(
          `runBatch returned ${Array.isArray(outcomes) ? outcomes.length : "no"} outcomes for ${valid.length} items`,
          "bad_batch_outcomes",
        );
      }
    } catch (err) {
      failure = err;
      outcomes = undefined;
    }
  }

  const now = Date.now();
  const claimed = items.filter((i) => i.attempt > 0);
  const changes: { id: string; t: Transition; ttl?: number }[] = [];
  const rejoin: { it: TakenItem; due: number }[] = [];
  const final = (it: TakenItem, to: "succeeded" | "failed", fields: Record<string, string>, error?: TaskError) =>
    changes.push({
      id: it.id,
      t: { from: ["running", "failed"], to, at: now, attempt: it.attempt, fields, ...(error ? { error } : {}) },
      ttl: it.options.resultTtl,
    });
  // `due`: when the next attempt is due, when known (shown as nextAttemptAt; "" clears an older
  // one); `runAt`: a wait the provider asked for, recorded as the task's due time too.
  const retrying = (it: TakenItem, error: TaskError, due?: number, runAt = false) =>
    changes.push({
      id: it.id,
      t: {
        from: ["running"],
        to: "retrying",
        at: now,
        attempt: it.attempt,
        error,
        fields: { error: JSON.stringify(error), nextAt: due ?? "", ...(runAt && due ? { runAt: due } : {}) },
      },
    });

  if (failure !== undefined) {
    // The whole call failed: every claimed item shares its fate.
    const error = describe(failure);
    if (failure instanceof RateLimited && mayWait(fm.waited, failure.afterSeconds)) {
      const after = roomAfter(failure.afterSeconds, fm.waited);
      try {
        await publishFlush(
          deps,
          def,
          { ...fm, spent: (fm.spent ?? 0) + retried, waited: (fm.waited ?? 0) + after },
          after,
          `flush.${batchId}.wait.${attempt}`,
        );
        for (const it of claimed) retrying(it, error, now + Math.round(after * 1000), true);
        await deps.store.transitionMany(changes);
        await outboxOf(deps).release(batchId);
        log.warn("rate limited: the batch waits for room without spending an attempt", { after, items: claimed.length });
        return ok({ batch: batchId, state: "retrying", error });
      } catch (err) {
        console.warn(`[celeriac] batch ${batchId}: could not reschedule after a rate limit, retrying as usual: ${messageOf(err)}`);
        changes.length = 0;
      }
    }
    const lastTry = (fm.spent ?? 0) + retried >= def.retries;
    if (!error.retryable || lastTry) {
      for (const it of claimed) final(it, "failed", { error: JSON.stringify(error) }, error);
      const { told } = await recordAndTell(deps, changes);
      log.error("batch failed", { code: error.code, message: error.message, items: claimed.length });
      if (!told) return retryToTell(deps, batchId);
      return error.retryable
        ? { status: 500, headers: {}, body: { batch: batchId, state: "failed", error } }
        : { status: 489, headers: { "Upstash-NonRetryable-Error": "true" }, body: { batch: batchId, state: "failed", error } };
    }
    const retryAfter = failure instanceof RetryLater ? failure.afterSeconds : undefined;
    // QStash retries the flush after Retry-After, else after the task's retryDelay.
    const wait = retryAfter !== undefined ? retryAfter * 1000 : retryWaitMs(def.retryDelay, retried);
    for (const it of claimed) retrying(it, error, wait !== undefined ? now + wait : undefined, retryAfter !== undefined);
    await deps.store.transitionMany(changes);
    // Let QStash's retry of this flush take the batch at once rather than after the lease.
    await outboxOf(deps).release(batchId);
    log.warn("batch will retry", { code: error.code, message: error.message, items: claimed.length });
    return retryAfter !== undefined
      ? { status: 503, headers: { "Retry-After": String(retryAfter) }, body: { batch: batchId, state: "retrying", error } }
      : { status: 500, headers: {}, body: { batch: batchId, state: "retrying", error } };
  }

  // Each item's own outcome.
  const byId = new Map(valid.map((v, i) => [v.id, outcomes![i]!]));
  let succeeded = 0;
  for (const [i, it] of items.entries()) {
    if (it.attempt === 0) continue;
    const check = checked[i]!;
    if (!check.ok) {
      const error = describe(
        new PermanentError(
          `payload no longer matches the schema: ${check.issues.map((x) => `${x.path}: ${x.message}`).join("; ")}`,
          "invalid_payload",
        ),
      );
      final(it, "failed", { error: JSON.stringify(error) }, error);
      continue;
    }
    const o = byId.get(it.id)!;
    const stored = "error" in o ? { failure: o.error } : storedResult(o.result);
    if (stored.failure === undefined) {
      succeeded++;
      final(it, "succeeded", "json" in stored && stored.json !== undefined ? { result: stored.json } : {});
      continue;
    }
    const error = describe(stored.failure);
    if (!error.retryable || it.attempt > it.options.retries) final(it, "failed", { error: JSON.stringify(error) }, error);
    else {
      const due = now + retryWaitOf(it, stored.failure);
      retrying(it, error, due);
      rejoin.push({ it, due });
    }
  }
  const { told } = await recordAndTell(deps, changes);
  // An item that failed alone, retryably, waits in the outbox for a later batch, until its retry is due.
  try {
    await Promise.all(rejoin.map(({ it, due }) => joinBatchAgain(deps, def, it, due)));
  } catch (err) {
    // Its flush must exist: this flush's retry finds the item waiting and publishes that flush
    // (an item the join missed is still this batch's, and the retry runs it).
    console.warn(`[celeriac] batch ${batchId}: could not put back ${rejoin.length} item(s) that will retry: ${messageOf(err)}`);
    await outboxOf(deps).release(batchId);
    return { status: 503, headers: { "Retry-After": "1" }, body: { batch: batchId, error: "retry_not_scheduled" } };
  }
  log.info("batch done", { items: claimed.length, succeeded, ms: now - now0 });
  return told ? ok({ batch: batchId, items: claimed.length, succeeded }) : retryToTell(deps, batchId);
}

/**
 * Records the items' changes in one round trip, then tells the callers of those that ended (one
 * more round trip finds which asked). `told` is false when a callback could not be enqueued (QStash
 * or Redis unreachable): the caller then answers 503 ({@link retryToTell}), and the flush's retry
 * (or, once QStash gives up on it, its failure callback) tells the callers of the batch's items
 * that ended. No list of pending callbacks is needed, nor kept apart from the outcomes: the
 * records are that list, written in the same step (an item that ended here is final and keeps
 * `batch` = this batch and its `callback`), and enqueuing a callback is idempotent (its task id
 * derives from `<task id>.<event>`), so telling again a caller already told enqueues nothing
 * more: each callback is enqueued once in effect. The retry sends nothing again: its items have
 * ended (or wait in their outbox), so the batch claims none of them and runBatch is not called.
 */
async function recordAndTell(
  deps: Relay,
  changes: { id: string; t: Transition; ttl?: number }[],
): Promise<{ rs: TransitionResult[]; told: boolean }> {
  const rs = await deps.store.transitionMany(changes);
  const ended = changes.flatMap((c, i) => (rs[i]?.kind === "ok" && FINAL_STATES.includes(c.t.to) ? [{ id: c.id, state: c.t.to }] : []));
  return { rs, told: await tellEnded(deps, ended) };
}

/** Tells the callers of tasks that ended; false (logged) when a callback could not be enqueued. */
async function tellEnded(deps: Relay, ended: { id: string; state: TaskState }[]): Promise<boolean> {
  try {
    await notifyEnded(deps, ended);
    return true;
  } catch (err) {
    console.error(`[celeriac] could not enqueue the callbacks of ${ended.length} task(s): ${messageOf(err)}`);
    return false;
  }
}

const notTold = () => unavailable("qstash", "the callbacks of tasks that ended could not all be enqueued");

/** The answer when callers are still to be told: QStash comes back, and the batch's lease is let go so it need not wait. */
async function retryToTell(deps: Relay, batchId: string): Promise<Outcome> {
  await outboxOf(deps).release(batchId);
  return { status: 503, headers: { "Retry-After": "5" }, body: { batch: batchId, callbacks: "not enqueued yet" } };
}

/**
 * How long an item that failed alone waits before a flush may take it again (ms): its
 * Retry-After, else its retryDelay for this retry, as QStash waits before retrying a task on its
 * own (an expression celeriac did not write, which it cannot read, waits the default backoff).
 */
function retryWaitOf(it: TakenItem, failure: unknown): number {
  if (failure instanceof RetryLater) return Math.min(failure.afterSeconds, MAX_ITEM_WAIT_S) * 1000;
  const retried = it.attempt - 1; // QStash's Upstash-Retried for this retry
  return (it.options.retryDelay ? retryWaitMs(it.options.retryDelay, retried) : undefined) ?? retryWaitMs(retryDelayExpression(), retried)!;
}

/** Longest an item waits in its outbox for a Retry-After (s): a year, as a retryDelay may name. */
const MAX_ITEM_WAIT_S = 365 * 86_400;

/** Puts an item that failed alone back into its outbox, due at `due` (ms), arming a flush for then unless one is due by then. */
async function joinBatchAgain(deps: Relay, def: Batched, it: TakenItem, due: number) {
  const key = keyOf(def, it.payload);
  const now = Date.now();
  const r = await outboxOf(deps).join(
    `${def.name}:${key}`,
    { id: it.id, task: def.name, state: "retrying", payload: it.payload, options: it.options, createdAt: now, runAt: now },
    now,
    due,
    due + def.batch.maxWaitMs,
    true,
  );
  if (r.kind === "armed")
    await publishFlush(deps, def, { v: 1, flush: { task: def.name, key, window: r.window } }, Math.max(0, r.at - now) / 1000);
}

/**
 * QStash gave up on a flush (its failure callback). Whether a run that still holds items took
 * effect is not known here (the Resend call may have gone out and only its answer been lost, or
 * the worker died after it), so, as `giveUp` does for a task, the failure is not guessed: the same
 * flush (same window, so the same batch, body and Idempotency-Key) is published once more, due
 * when the batch's lease lapses. It finds the batch as it was and records what really happened
 * (Resend answers a call it already took from its idempotency memory). A batch whose runs keep
 * dying gets {@link MAX_RECHECKS} re-checks; then its items still held fail, their outcome stated
 * unknown. Returns how many items were recorded failed (0 while re-checking).
 */
export async function failGivenUpFlush(
  deps: Relay,
  fm: FlushMessage,
  cb: { retried?: number; status?: number; sourceMessageId?: string },
  now = Date.now(),
): Promise<{ failed: number; rechecking: boolean }> {
  const batchId = batchIdOf(fm.flush.task, fm.flush.window);
  const def = deps.registry.get(fm.flush.task);
  const batch = await outboxOf(deps).batch(batchId);
  const states = batch.ids.length ? await outboxOf(deps).heldStates(`${fm.flush.task}:${fm.flush.key}`, batchId, batch.ids) : [];
  const held = batch.ids.filter((_, i) => states[i] === "running" || states[i] === "retrying");
  if (held.length === 0) {
    // Nothing left to settle; callers an earlier run could not tell are told now (see recordAndTell).
    if (!(await tellEnded(deps, endedOf(batch.ids, states)))) throw notTold(); // 503: QStash calls back again
    if (isBatched(def)) await flushWaiting(deps, def, fm.flush.key, { window: fm.flush.window, messageId: cb.sourceMessageId });
    return { failed: 0, rechecking: false };
  }
  // A re-check counts once it started a run of its own (the batch's runs moved on) that died too.
  const rechecks = (fm.recheck?.n ?? 0) + (fm.recheck && batch.attempt > fm.recheck.attempt ? 1 : 0);
  if (isBatched(def) && rechecks < MAX_RECHECKS) {
    const lapse = Math.max(now, batch.leaseUntil);
    try {
      await publishFlush(
        deps,
        def,
        { ...fm, recheck: { n: rechecks, attempt: batch.attempt } },
        (lapse + 1_000 - now) / 1000,
        // QStash may call back twice for the message it gave up on: still one re-check.
        `flush.${batchId}.recheck-of-${cb.sourceMessageId ?? `${rechecks}.${batch.attempt}`}`,
      );
    } catch (err) {
      throw unavailable("qstash", err); // 503: QStash calls back again
    }
    console.warn(`[celeriac] batch ${batchId}: QStash gave up while it held ${held.length} item(s); re-checking it when its lease lapses`);
    return { failed: 0, rechecking: true };
  }
  const error = {
    code: "delivery_failed",
    message: `QStash gave up on batch ${batchId} after ${(cb.retried ?? 0) + 1} attempt(s); last status ${cb.status ?? "none"}; run ${batch.attempt} still held the task after ${rechecks} re-checks, so whether it took effect is unknown`,
    retryable: false,
  };
  const ttl = def?.resultTtl;
  const { rs, told } = await recordAndTell(
    deps,
    held.map((id) => ({
      id,
      t: { from: ["running", "retrying"], to: "failed", at: now, error, fields: { error: JSON.stringify(error) } },
      ...(ttl ? { ttl } : {}),
    })),
  );
  // 503: QStash calls back again, finds nothing held, and tells the callers then.
  if (!told) throw notTold();
  if (isBatched(def)) await flushWaiting(deps, def, fm.flush.key, { window: fm.flush.window, messageId: cb.sourceMessageId });
  return { failed: rs.filter((r) => r.kind === "ok").length, rechecking: false };
}

/**
 * Makes sure the items waiting in an outbox have a flush, after QStash gave up on one that may
 * not have published theirs: a flush whose next window (or an item's retry window) could not be
 * published answers 503 so that its retry publishes it, and its last try has no retry. Publishes
 * the armed window's flush again, due when it is (QStash deduplicates one it holds), so the arm
 * does not hold back the joins it gathers; or, when none is armed, a new window's at once, whose
 * run takes the items that are due and arms the rest. Nothing when no item waits.
 * `gaveUp`: the flush QStash gave up on. When the window armed is still its own (none of its tries
 * took its batch: each died or failed before), publishing that window under its usual
 * deduplication id would only meet the dead message's (QStash keeps the id ten minutes), so the
 * window's flush goes out under an id of its own, once per message given up on.
 */
async function flushWaiting(
  deps: Relay,
  def: Batched,
  key: string,
  gaveUp?: { window: string; messageId?: string | undefined },
): Promise<void> {
  const { waiting, armed } = await outboxOf(deps).pending(`${def.name}:${key}`);
  if (waiting === 0) return;
  const now = Date.now();
  const window = armed?.window ?? newWindow(now);
  const again = armed && gaveUp && armed.window === gaveUp.window;
  try {
    await publishFlush(
      deps,
      def,
      { v: 1, flush: { task: def.name, key, window } },
      armed ? Math.max(0, armed.at - now) / 1000 : 0,
      again ? `flush.${batchIdOf(def.name, window)}.again-of-${gaveUp.messageId ?? "given-up"}` : undefined,
    );
  } catch (err) {
    throw unavailable("qstash", err); // 503: QStash calls back again
  }
}

/**
 * The batch whose flush will retry its call with this task in it, when one does: a `retrying`
 * task that a batch took and that is not back in its outbox. That call sends the task's email
 * whatever its record says (a retried call keeps its body, and so its Idempotency-Key), so such
 * a task can no longer be cancelled. Null otherwise.
 */
export async function retryingIn(deps: Relay, rec: { id: string; task: string; state: string; payload: unknown }): Promise<string | null> {
  const def = deps.registry.get(rec.task);
  if (rec.state !== "retrying" || !isBatched(def)) return null;
  const batch = (await deps.store.redis.hget(deps.store.recKey(rec.id), "batch")) as string | null;
  if (!batch) return null;
  return (await outboxOf(deps).waiting(`${def.name}:${keyOf(def, rec.payload)}`, rec.id)) ? null : batch;
}

/**
 * Whether a task waits in its outbox (a batched task's delivery joined it, or it failed alone and
 * waits for its retry), after making sure its outbox has a flush (see {@link flushWaiting}). Such
 * a task is its outbox's now, not its message's: when QStash gives up on that message (its join
 * could not publish the flush it armed, on its last try), the task is not failed, and the flush
 * its arm stood for, which later joins counted on too, is published.
 */
export async function keepWaiting(deps: Relay, rec: { id: string; task: string; payload: unknown }): Promise<boolean> {
  const def = deps.registry.get(rec.task);
  if (!isBatched(def)) return false;
  const key = keyOf(def, rec.payload);
  if (!(await outboxOf(deps).waiting(`${def.name}:${key}`, rec.id))) return false;
  await flushWaiting(deps, def, key);
  return true;
}

/** The items that ended, with their final states (`states` from Outbox.heldStates). */
const endedOf = (ids: string[], states: (TaskState | null)[]) =>
  ids.flatMap((id, i) => {
    const state = states[i];
    return state && FINAL_STATES.includes(state) ? [{ id, state }] : [];
  });
