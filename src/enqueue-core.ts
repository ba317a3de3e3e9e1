// The one way tasks are enqueued, after validation (src/enqueue.ts): record and publish together.

import { QstashError } from "@upstash/qstash";
import type { CallbackSpec } from "./callback-option.ts";
import { ApiError, messageOf, unavailable } from "./errors.ts";
import { type Conflict, conflictOf, dedupId, idemKeyFor, isStrayRepeat, taskIdFor } from "./idempotency.ts";
import type { TaskMessage } from "./messages.ts";
import { cancelMessage, type Publish, publish } from "./queue.ts";
import type { AnyTask } from "./registry.ts";
import { deliveryFlowControl, type Relay } from "./relay.ts";
import type { Services } from "./services.ts";
import type { CreateResult } from "./store/index.ts";
import type { TaskState } from "./store/record.ts";

/** One task to enqueue; its payload already passed the task's schema. */
export interface EnqueueItem {
  def: AnyTask;
  payload: unknown;
  /** Seconds from now. @default the task's `delay` */
  delay?: number;
  /** Absolute due time, ms since the epoch; wins over `delay`. */
  notBefore?: number;
  retries?: number;
  /** Per-attempt timeout, seconds. */
  timeout?: number;
  /** The `Upstash-Retry-Delay` expression. @default the task's `retryDelay` */
  retryDelay?: string;
  /** How long the finished record is kept, seconds. @default the task's `resultTtl` */
  resultTtl?: number;
  /** Payload paths kept out of the record besides the task's own `redact`. */
  redact?: string[];
  idempotencyKey?: string;
  /** Where to tell the caller how it went (src/callbacks.ts). */
  callback?: CallbackSpec;
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
  conflict?: Conflict;
}

/** The paths to keep out of the record: the task's own and the enqueue's. */
const redactOf = (it: EnqueueItem) => {
  const paths = [...new Set([...(it.def.redact ?? []), ...(it.redact ?? [])])];
  return paths.length ? { redact: paths } : {};
};

/** Tasks due within this long count as `queued`, later ones as `scheduled` (ms). */
export const SCHEDULED_AFTER_MS = 1_000;

type Deps = Pick<Relay, "config" | "services" | "store" | "taskEnvs">;

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
        id: await taskIdFor(scope, it.idempotencyKey, now),
        task: it.def.name,
        payload: it.payload,
        options: {
          retries: it.retries ?? it.def.retries,
          timeout: it.timeout ?? it.def.timeout,
          resultTtl: it.resultTtl ?? it.def.resultTtl,
          retryDelay: it.retryDelay ?? it.def.retryDelay,
        },
        createdAt: now,
        runAt,
        ...(it.idempotencyKey ? { idempotencyKey: it.idempotencyKey } : {}),
        ...redactOf(it),
        ...(it.callback ? { callback: it.callback } : {}),
      };
    }),
  );
  const idemKeys = items.map((it) => idemKeyFor(store, scope, it.idempotencyKey));
  const publishes: Publish[] = await Promise.all(
    items.map(async (it, i) => ({
      message: messages[i]!,
      ...(it.def.flowControl ? { flowControl: deliveryFlowControl(deps, it.def) } : {}),
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
    throw unavailable("redis", (created as PromiseRejectedResult).reason);
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
      if (isStrayRepeat(c, deduplicated, now)) {
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
      const conflict = conflictOf(c, m);
      return {
        ...base,
        task: first?.task ?? m.task,
        state: first?.state ?? states[i]!,
        runAt: first?.runAt ?? iso(m.runAt),
        createdAt: first?.createdAt ?? iso(now),
        duplicate: true,
        ...(conflict ? { conflict } : {}),
      };
    }),
  );
}

const iso = (ms: number) => new Date(ms).toISOString();

/** A QStash failure: its 4xx answers are about the request (too large, over a plan limit). */
function qstashError(err: unknown): ApiError {
  const status = err instanceof QstashError ? err.status : undefined;
  if (status !== undefined && status >= 400 && status < 500 && ![401, 403, 429].includes(status)) {
    const message = `[celeriac] QStash refused the task: ${messageOf(err)}`;
    return new ApiError(status === 413 ? 413 : 422, { code: "rejected_by_qstash", message, cause: err });
  }
  return unavailable("qstash", err);
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
    work.push(
      deps.store.discard(
        fresh.map((i) => messages[i]!.id),
        fresh.map((i) => idemKeys[i]!),
        now,
      ),
    );
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
