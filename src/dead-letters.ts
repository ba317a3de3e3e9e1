import { ApiError, messageOf } from "./errors.ts";
import { deleteDlq, retryTask } from "./lifecycle.ts";
import type { Relay } from "./relay.ts";
import { type DeadQuery, discardDead, listDead } from "./store/dead.ts";
import type { TaskRecord } from "./store/record.ts";

/** What QStash kept of the message it gave up on. */
export interface DlqSummary {
  dlqId: string;
  messageId: string;
  /** The status of the last attempt (celeriac's own answer). */
  responseStatus?: number;
  /** Its body, cut to 500 characters. */
  responseBody?: string;
}

export type DeadLetter = TaskRecord & { dlq?: DlqSummary };

/** The most dead letters one replay by filter takes on; the answer says when more matched. */
export const MAX_REPLAY = 1_000;

/** One page of dead letters, each with its QStash DLQ message when there is one (one QStash call per page). */
export async function deadLetters(relay: Relay, q: DeadQuery): Promise<{ tasks: DeadLetter[]; cursor?: string }> {
  const page = await listDead(relay.store, q);
  const dlqIds = page.tasks.flatMap((t) => (t.dlqId ? [t.dlqId] : []));
  if (dlqIds.length === 0) return page;
  const found = new Map<string, DlqSummary>();
  try {
    const { messages } = await relay.services.qstash.dlq.listMessages({ dlqIds });
    for (const m of messages) {
      found.set(m.dlqId, {
        dlqId: m.dlqId,
        messageId: m.messageId,
        ...(m.responseStatus !== undefined ? { responseStatus: m.responseStatus } : {}),
        ...(m.responseBody !== undefined ? { responseBody: m.responseBody.slice(0, 500) } : {}),
      });
    }
  } catch (err) {
    // The records are the dead letters; QStash's copy is a detail worth a warning, not a 503.
    console.warn(`[celeriac] could not read QStash's DLQ: ${messageOf(err)}`);
  }
  return { ...page, tasks: page.tasks.map((t) => (t.dlqId && found.has(t.dlqId) ? { ...t, dlq: found.get(t.dlqId)! } : t)) };
}

const notDead = (rec: TaskRecord) =>
  new ApiError(409, {
    code: "not_dead",
    message: `task ${rec.id} is ${rec.state}${rec.discardedAt ? " and was discarded" : ""}; it is not a dead letter`,
    extra: { id: rec.id, state: rec.state },
  });

/** Re-enqueues one dead letter under its id; null for an unknown id, 409 when it is not dead. */
export async function replayDead(relay: Relay, id: string): Promise<TaskRecord | null> {
  const rec = await relay.store.get(id);
  if (!rec) return null;
  if (rec.state !== "failed" || rec.discardedAt) throw notDead(rec);
  try {
    return await retryTask(relay, id);
  } catch (err) {
    // Replayed by someone else meanwhile: it is no longer dead.
    if (err instanceof ApiError && err.code === "not_retryable") throw notDead((await relay.store.get(id)) ?? rec);
    throw err;
  }
}

/**
 * Replays every dead letter matching the filter (up to {@link MAX_REPLAY}), or only counts them.
 * Each replay moves its task out of the dead letters atomically, so replaying a filter twice, or
 * concurrently, enqueues each task once.
 */
export async function replayMatching(relay: Relay, filter: Omit<DeadQuery, "cursor" | "limit">, dryRun: boolean) {
  const ids: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await listDead(relay.store, { ...filter, limit: 100, ...(cursor ? { cursor } : {}) });
    ids.push(...page.tasks.map((t) => t.id));
    cursor = page.cursor;
  } while (cursor && ids.length < MAX_REPLAY);
  const matched = ids.slice(0, MAX_REPLAY);
  const more = ids.length > MAX_REPLAY || cursor !== undefined;
  if (dryRun) return { dryRun: true, matched: matched.length, ids: matched, ...(more ? { more: true } : {}) };
  const replayed: string[] = [];
  let skipped = 0;
  // A few at a time: each is a Redis round trip and a QStash publish.
  for (let i = 0; i < matched.length; i += 10) {
    const results = await Promise.allSettled(matched.slice(i, i + 10).map((id) => replayDead(relay, id)));
    results.forEach((r, j) => {
      if (r.status === "fulfilled" && r.value) replayed.push(matched[i + j]!);
      else if (r.status === "rejected" && !(r.reason instanceof ApiError && r.reason.status === 409)) throw r.reason;
      else skipped++;
    });
  }
  return { dryRun: false, matched: matched.length, replayed: replayed.length, skipped, ids: replayed, ...(more ? { more: true } : {}) };
}

/** Discards a dead letter (the record stays, failed) and deletes its QStash DLQ message. */
export async function discardDeadLetter(relay: Relay, id: string) {
  const r = await discardDead(relay.store, id, Date.now());
  if (r.kind === "missing") return null;
  if (r.kind === "conflict") {
    const rec = await relay.store.get(id);
    if (!rec) return null;
    throw notDead(rec);
  }
  const dlqDeleted = r.dlqId ? await deleteDlq(relay, r.dlqId) : false;
  return { id, discarded: true, ...(r.dlqId ? { dlqId: r.dlqId, dlqDeleted } : {}) };
}
