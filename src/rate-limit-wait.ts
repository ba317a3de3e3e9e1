import type { RateLimited } from "./errors.ts";
import { messageOf } from "./errors.ts";
import type { TaskMessage } from "./messages.ts";
import { publish } from "./queue.ts";
import { deliveryFlowControl, type Relay } from "./relay.ts";
import type { TaskError } from "./store/record.ts";

// A 429 is the provider saying "later", never "no". QStash counts every failed delivery against
// the message's retries, so answering it with a 5xx would spend an attempt meant for real errors
// (200 emails against a 5 requests/s limit used to end with 165 of them failed). Instead the task
// is rescheduled as a new QStash message: the delivery is acknowledged, the record says
// `retrying` (code `rate_limited`) until then, and the new message carries the attempts spent so
// far (`spent`), so its retries are what is left. The total wait is bounded.

/** The longest a task waits for rate limits in all, seconds; past it a 429 counts as an attempt. */
export const MAX_RATE_LIMIT_WAIT_S = 3_600;

/** The most a single wait spreads beyond `Retry-After`, seconds. */
const MAX_SPREAD_S = 60;

/**
 * How long to wait for room: the provider's `Retry-After` (at least a second) plus a random part
 * that grows with how long the task already waited (full jitter, about doubling each time, capped
 * at a minute). A crowd told "1 s" so does not come back at one instant, again and again: when
 * 1,000 tasks meet a limit of 5 a second, the retries spread out until they fit it.
 */
export function roomAfter(afterSeconds: number, waited = 0, random = Math.random()): number {
  const base = Math.max(1, afterSeconds);
  const spread = Math.min(MAX_SPREAD_S, Math.max(base, waited));
  return Math.round((base + random * spread) * 1000) / 1000;
}

/** Whether a task that already waited `waited` seconds may wait `after` more. */
export const mayWait = (waited: number | undefined, after: number) => (waited ?? 0) + after <= MAX_RATE_LIMIT_WAIT_S;

/**
 * Reschedules a rate-limited task without spending an attempt: records `retrying` (fenced by the
 * attempt) with a note of the wait (`wait`, see {@link supersedingWait}), publishes its message
 * again `after` seconds from now (deduplicated per attempt, so a repeated delivery does not
 * publish twice). Returns false when either step failed, and the caller falls back to an
 * ordinary retry.
 */
export async function waitForRoom(
  relay: Relay,
  m: TaskMessage,
  d: { retried: number; attempt: number },
  failure: RateLimited,
  error: TaskError,
  now: number,
): Promise<boolean> {
  const after = roomAfter(failure.afterSeconds, m.waited);
  const next: TaskMessage = { ...m, spent: (m.spent ?? 0) + d.retried, waited: (m.waited ?? 0) + after };
  const t = await relay.store.transition(m.id, {
    from: ["running"],
    to: "retrying",
    at: now,
    attempt: d.attempt,
    error,
    fields: { error: JSON.stringify(error), runAt: now + Math.round(after * 1000), wait: `${m.gen ?? 0}:${d.attempt}:${next.waited}` },
  });
  if (t.kind !== "ok") return false;
  try {
    await publishWait(relay, next, after, d.attempt);
    return true;
  } catch (err) {
    console.warn(`[celeriac] task ${m.id}: could not reschedule after a rate limit, retrying as usual: ${messageOf(err)}`);
    return false;
  }
}

/** Publishes a wait's message, due `after` seconds from now; one per waiting attempt (QStash deduplicates a repeat). */
async function publishWait(relay: Relay, next: TaskMessage, after: number, attempt: number): Promise<void> {
  const def = relay.registry.get(next.task);
  const flowControl = def ? deliveryFlowControl(relay, def) : undefined;
  await publish(relay.services.qstash, relay.config, [
    { message: next, delay: after, deduplicationId: `${next.id}.wait.${attempt}`, ...(flowControl ? { flowControl } : {}) },
  ]);
}

/**
 * The rate-limit wait that superseded message `m`, or null: the latest wait recorded on the task
 * (its generation, the attempt that waited, the seconds waited in all that the wait's message
 * carries), when it is of `m`'s generation and `m` carries fewer seconds, so the wait came after
 * `m`. From then on the wait's message, not `m`, holds the task: QStash may still give up on
 * `m` (the delivery that published the wait answered 200, but QStash never heard it), and that
 * must not fail the task (see `giveUp`). Unless `m` went on: when the wait's publish failed, the
 * delivery answered as for an ordinary retry, and QStash's retry of `m` took the task again.
 */
export async function supersedingWait(relay: Relay, m: TaskMessage): Promise<{ attempt: number; waited: number } | null> {
  const note = (await relay.store.redis.hget(relay.store.recKey(m.id), "wait")) as string | null;
  const [gen, attempt, waited] = String(note ?? "")
    .split(":")
    .map(Number);
  return note && gen === (m.gen ?? 0) && waited! > (m.waited ?? 0) ? { attempt: attempt!, waited: waited! } : null;
}

/**
 * Makes sure the message of a wait that superseded `m` exists, due at `runAt` (ms): published
 * again under its deduplication id, which QStash answers with the one it holds. Needed when the
 * delivery that recorded the wait died before it published it, or could not publish it.
 */
export async function republishWait(
  relay: Relay,
  m: TaskMessage,
  wait: { attempt: number; waited: number },
  retried: number,
  runAt: number,
  now: number,
): Promise<void> {
  const { recheck: _, ...base } = m;
  const next: TaskMessage = { ...base, spent: (m.spent ?? 0) + retried, waited: wait.waited };
  await publishWait(relay, next, Math.max(0, runAt - now) / 1000, wait.attempt);
}
