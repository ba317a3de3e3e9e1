import type { Config } from "./env.ts";
import { ApiError, UnavailableError, messageOf } from "./errors.ts";
import { idempotentTaskId, newTaskId } from "./ids.ts";
import type { TaskMessage } from "./messages.ts";
import { cancelMessage, publish, type Publish } from "./queue.ts";
import type { Services } from "./services.ts";
import type { CreateResult, TaskStore } from "./store/index.ts";
import type { TaskState } from "./store/record.ts";
import type { TaskDefinition } from "./task.ts";

/** One task to enqueue; its payload already passed the task's schema. */
export interface EnqueueItem {
  def: TaskDefinition;
  payload: unknown;
  /** Seconds from now. @default the task's `delay` */
  delay?: number;
  /** Absolute due time, ms since the epoch; wins over `delay`. */
  notBefore?: number;
  retries?: number;
  /** Per-attempt timeout, seconds. */
  timeout?: number;
  idempotencyKey?: string;
}

/** What the caller gets back: the new task, or the first one its idempotency key made. */
export interface Enqueued {
  id: string;
  task: string;
  state: TaskState;
  runAt: string;
  createdAt: string;
  /** True when an idempotency key matched an earlier task, which is returned instead. */
  duplicate: boolean;
  /** The QStash message that delivers it. */
  messageId: string;
  idempotencyKey?: string;
  /** Set when the key was first used with another task or payload: nothing was enqueued. */
  conflict?: { code: "idempotency_key_reused"; message: string };
}

/** Tasks due within this long count as `queued`, later ones as `scheduled` (ms). */
const SCHEDULED_AFTER_MS = 1_000;
/**
 * QStash deduplicates a repeated publish for at least this long (ms; 10 minutes in its docs).
 * Within it, a repeat's publish landed on the first message; past it, the repeat made a second.
 */
const QSTASH_DEDUP_WINDOW_MS = 10 * 60_000;

type Deps = { config: Config; services: Services; store: TaskStore };

/**
 * Enqueues tasks: one QStash call (a batch for several) and one Redis round trip, concurrently.
 * A task enqueued with an idempotency key gets an id derived from it, and QStash deduplicates on
 * that id, so concurrent repeats meet on one record and one message. When QStash or Redis fails,
 * what the other wrote is undone and the caller gets a 503.
 */
export async function enqueue(deps: Deps, scope: string, items: EnqueueItem[], now = Date.now()): Promise<Enqueued[]> {
  const { config, services, store } = deps;
  const messages = await Promise.all(
    items.map(async (it): Promise<TaskMessage> => {
      const runAt = Math.max(now, it.notBefore ?? now + Math.round((it.delay ?? it.def.delay) * 1000));
      return {
        v: 1,
        id: it.idempotencyKey ? await idempotentTaskId(scope, it.idempotencyKey) : newTaskId(now),
        task: it.def.name,
        payload: it.payload,
        options: { retries: it.retries ?? it.def.retries, timeout: it.timeout ?? it.def.timeout, resultTtl: it.def.resultTtl },
        createdAt: now,
        runAt,
        ...(it.idempotencyKey ? { idempotencyKey: it.idempotencyKey } : {}),
      };
    }),
  );
  const idemKeys = items.map((it) => (it.idempotencyKey ? store.idemKey(scope, it.idempotencyKey) : ""));
  const publishes: Publish[] = await Promise.all(
    items.map(async (it, i) => ({
      message: messages[i]!,
      ...(it.def.flowControl ? { flowControl: it.def.flowControl } : {}),
      // Repeats with the same payload collapse onto one message; a key reused for another payload
      // makes a message of its own, which the mismatch below then cancels without touching the first.
      ...(it.idempotencyKey ? { deduplicationId: await dedupId(messages[i]!) } : {}),
    })),
  );
  const states = messages.map((m): TaskState => (m.runAt - now > SCHEDULED_AFTER_MS ? "scheduled" : "queued"));

  const [published, created] = await Promise.allSettled([
    publish(services.qstash, config, publishes),
    store.createMany(
      messages.map((m, i) => ({ ...m, state: states[i]! })),
      idemKeys,
    ),
  ]);
  if (published.status === "rejected" || created.status === "rejected") {
    await undo(deps, messages, idemKeys, published, created, now);
    if (published.status === "rejected") throw qstashError(published.reason);
    throw new UnavailableError("redis", (created as PromiseRejectedResult).reason);
  }

  return Promise.all(
    created.value.map(async (c, i): Promise<Enqueued> => {
      const m = messages[i]!;
      let { messageId } = published.value[i]!;
      const { deduplicated } = published.value[i]!;
      if (c.kind === "new" && deduplicated && !(await messageExists(services, messageId))) {
        // QStash still remembered this id from an enqueue that was undone (its message cancelled):
        // publish again, without deduplication, so the new record has a message.
        const [again] = await publish(services.qstash, config, [{ ...publishes[i]!, deduplicationId: undefined }]).catch((err) => {
          throw qstashError(err);
        });
        messageId = again!.messageId;
      }
      if (c.kind !== "new" && !deduplicated && (c.kind === "mismatch" || now - c.createdAt > QSTASH_DEDUP_WINDOW_MS)) {
        // This repeat published a second message for the same id (QStash had forgotten the
        // first): drop it, or it could run the task before the first one's due time.
        await cancelMessage(services.qstash, messageId).catch((err) =>
          console.warn(`[celeriac] could not cancel the repeat's message ${messageId}: ${messageOf(err)}`),
        );
      }
      const base = {
        id: m.id,
        task: m.task,
        messageId,
        ...(m.idempotencyKey ? { idempotencyKey: m.idempotencyKey } : {}),
      };
      if (c.kind === "new") {
        return { ...base, state: states[i]!, runAt: iso(m.runAt), createdAt: iso(now), duplicate: false };
      }
      const first = await store.get(m.id);
      return {
        ...base,
        task: first?.task ?? m.task,
        state: first?.state ?? states[i]!,
        runAt: first?.runAt ?? iso(m.runAt),
        createdAt: first?.createdAt ?? iso(now),
        duplicate: true,
        ...(c.kind === "mismatch"
          ? {
              conflict: {
                code: "idempotency_key_reused" as const,
                message: `idempotency key "${m.idempotencyKey}" was first used for a "${c.task}" task with another payload`,
              },
            }
          : {}),
      };
    }),
  );
}

const iso = (ms: number) => new Date(ms).toISOString();

async function dedupId(m: TaskMessage): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`${m.task}\n${JSON.stringify(m.payload ?? null)}`));
  return `${m.id}.${[...new Uint8Array(d).slice(0, 8)].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** A QStash failure: its 4xx answers are about the request (too large, over a plan limit). */
function qstashError(err: unknown): ApiError {
  const status = (err as { status?: unknown } | null)?.status;
  if (typeof status === "number" && status >= 400 && status < 500 && ![401, 403, 429].includes(status)) {
    return new ApiError(status === 413 ? 413 : 422, "rejected_by_qstash", `[celeriac] QStash refused the task: ${messageOf(err)}`);
  }
  return new UnavailableError("qstash", err);
}

async function messageExists(services: Services, messageId: string): Promise<boolean> {
  try {
    await services.qstash.messages.get(messageId);
    return true;
  } catch {
    return false;
  }
}

/** Undoes the half of an enqueue that succeeded, so a 503 leaves nothing behind. */
async function undo(
  deps: Deps,
  messages: TaskMessage[],
  idemKeys: string[],
  published: PromiseSettledResult<{ messageId: string; deduplicated: boolean }[]>,
  created: PromiseSettledResult<CreateResult[]>,
  now: number,
) {
  const work: Promise<unknown>[] = [];
  if (created.status === "fulfilled") {
    const fresh = created.value.map((c, i) => (c.kind === "new" ? i : -1)).filter((i) => i >= 0);
    work.push(deps.store.discard(fresh.map((i) => messages[i]!.id), fresh.map((i) => idemKeys[i]!), now));
  }
  if (published.status === "fulfilled") {
    // Only messages this request made: a deduplicated one belongs to an earlier, live enqueue.
    const own = published.value.filter((p) => !p.deduplicated);
    work.push(...own.map((p) => cancelMessage(deps.services.qstash, p.messageId)));
  }
  for (const r of await Promise.allSettled(work)) {
    if (r.status === "rejected") console.error(`[celeriac] could not undo a failed enqueue: ${messageOf(r.reason)}`);
  }
}
