import type { Config } from "./env.ts";
import { UnavailableError, messageOf } from "./errors.ts";
import { newTaskId, sha256Hex } from "./ids.ts";
import { cancelMessages, publish, type Publish, type TaskMessage } from "./queue.ts";
import type { Services } from "./services.ts";
import type { TaskStore } from "./store/index.ts";
import type { TaskRecord, TaskState } from "./store/record.ts";
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
  scheduleId?: string;
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
  /** The QStash message that will deliver it (absent for a duplicate). */
  messageId?: string;
  idempotencyKey?: string;
}

/** Tasks due within this long count as `queued`, later ones as `scheduled` (ms). */
const SCHEDULED_AFTER_MS = 1_000;

/**
 * Enqueues tasks: one QStash call (a batch for several) and one Redis round trip, concurrently.
 * When either fails, what the other wrote is undone and the caller gets a 503.
 */
export async function enqueue(
  deps: { config: Config; services: Services; store: TaskStore },
  scope: string,
  items: EnqueueItem[],
  now = Date.now(),
): Promise<Enqueued[]> {
  const { config, services, store } = deps;
  const messages: TaskMessage[] = items.map((it) => {
    const runAt = it.notBefore ?? now + Math.round((it.delay ?? it.def.delay) * 1000);
    return {
      v: 1,
      id: newTaskId(now),
      task: it.def.name,
      payload: it.payload,
      options: {
        retries: it.retries ?? it.def.retries,
        timeout: it.timeout ?? it.def.timeout,
        resultTtl: it.def.resultTtl,
      },
      createdAt: now,
      runAt: Math.max(runAt, now),
      ...(it.idempotencyKey ? { idempotencyKey: it.idempotencyKey } : {}),
      ...(it.scheduleId ? { scheduleId: it.scheduleId } : {}),
    };
  });
  const idemKeys = items.map((it) => (it.idempotencyKey ? store.idemKey(scope, it.idempotencyKey) : ""));
  const publishes: Publish[] = await Promise.all(
    items.map(async (it, i) => ({
      message: messages[i]!,
      ...(it.def.flowControl ? { flowControl: it.def.flowControl } : {}),
      // Two concurrent requests with one key publish twice; QStash keeps only the first.
      ...(it.idempotencyKey ? { deduplicationId: await sha256Hex(`${scope}\n${it.idempotencyKey}`) } : {}),
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
    await undo(deps, messages, idemKeys, published, created);
    const failed = published.status === "rejected" ? ["qstash", published.reason] : ["redis", (created as PromiseRejectedResult).reason];
    throw new UnavailableError(failed[0] as string, failed[1]);
  }

  return Promise.all(
    created.value.map(async (c, i): Promise<Enqueued> => {
      const m = messages[i]!;
      if (c.kind === "new") {
        return {
          id: m.id,
          task: m.task,
          state: states[i]!,
          runAt: new Date(m.runAt).toISOString(),
          createdAt: new Date(now).toISOString(),
          duplicate: false,
          messageId: published.value[i]!.messageId,
          ...(m.idempotencyKey ? { idempotencyKey: m.idempotencyKey } : {}),
        };
      }
      // The key named an earlier task. The message just published (unless QStash already
      // deduplicated it) would only meet a cancelled tombstone, but it is tidier to drop it.
      if (!published.value[i]!.deduplicated) {
        await cancelMessages(services.qstash, m.id).catch((err) =>
          console.warn(`[celeriac] could not cancel duplicate message for ${m.id}: ${messageOf(err)}`),
        );
      }
      const first = await store.get(c.id);
      return summary(first, c.id, m);
    }),
  );
}

function summary(first: TaskRecord | null, id: string, m: TaskMessage): Enqueued {
  return {
    id,
    task: first?.task ?? m.task,
    state: first?.state ?? "queued",
    runAt: first?.runAt ?? new Date(m.runAt).toISOString(),
    createdAt: first?.createdAt ?? new Date(m.createdAt).toISOString(),
    duplicate: true,
    ...(m.idempotencyKey ? { idempotencyKey: m.idempotencyKey } : {}),
  };
}

/** Undoes the half of an enqueue that succeeded, so a 503 leaves nothing behind. */
async function undo(
  deps: { services: Services; store: TaskStore },
  messages: TaskMessage[],
  idemKeys: string[],
  published: PromiseSettledResult<unknown>,
  created: PromiseSettledResult<{ kind: string }[]>,
) {
  const work: Promise<unknown>[] = [];
  if (created.status === "fulfilled") {
    const fresh = created.value.map((c, i) => (c.kind === "new" ? i : -1)).filter((i) => i >= 0);
    work.push(deps.store.discard(fresh.map((i) => messages[i]!.id), fresh.map((i) => idemKeys[i]!)));
  }
  if (published.status === "fulfilled") {
    work.push(...messages.map((m) => cancelMessages(deps.services.qstash, m.id)));
  }
  for (const r of await Promise.allSettled(work)) {
    if (r.status === "rejected") console.error(`[celeriac] could not undo a failed enqueue: ${messageOf(r.reason)}`);
  }
}
