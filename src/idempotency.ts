// Idempotency in one place: an idempotency key names one task id, QStash deduplicates repeats of
// it, and a key reused for another task or payload is a conflict.
import { idempotentTaskId, newTaskId } from "./ids.ts";
import type { TaskMessage } from "./messages.ts";
import type { CreateResult, TaskStore } from "./store/index.ts";

/**
 * QStash deduplicates a repeated publish for at least this long (ms; 10 minutes in its docs).
 * Within it, a repeat's publish landed on the first message; past it, the repeat made a second.
 */
const QSTASH_DEDUP_WINDOW_MS = 10 * 60_000;

/** Set when a key was first used with another task or payload: nothing was enqueued. */
export interface Conflict {
  code: "idempotency_key_reused";
  message: string;
}

/** The id of a new task: derived from its idempotency key (scoped per caller), else fresh. */
export const taskIdFor = (scope: string, key: string | undefined, now: number): Promise<string> | string =>
  key ? idempotentTaskId(scope, key) : newTaskId(now);

/** The Redis key mapping an idempotency key to its task, or "" without one. */
export const idemKeyFor = (store: TaskStore, scope: string, key: string | undefined) => (key ? store.idemKey(scope, key) : "");

/**
 * QStash's deduplication id for a keyed publish: repeats with the same payload collapse onto one
 * message; a key reused for another payload makes a message of its own, which is then cancelled.
 */
export async function dedupId(m: TaskMessage): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`${m.task}\n${JSON.stringify(m.payload ?? null)}`));
  return `${m.id}.${[...new Uint8Array(d).slice(0, 8)].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** The conflict a repeat met, if its key was first used for another task or payload. */
export function conflictOf(c: CreateResult, m: TaskMessage): Conflict | undefined {
  if (c.kind !== "mismatch") return undefined;
  return {
    code: "idempotency_key_reused",
    message: `idempotency key "${m.idempotencyKey}" was first used for a "${c.task}" task with another payload`,
  };
}

/**
 * True when a repeat published a second message for an existing id (QStash had forgotten the
 * first, or the payload differs): it must be cancelled, or it could run before the first's due time.
 */
export function isStrayRepeat(c: CreateResult, deduplicated: boolean, now: number): boolean {
  return c.kind !== "new" && !deduplicated && (c.kind === "mismatch" || now - c.createdAt > QSTASH_DEDUP_WINDOW_MS);
}
