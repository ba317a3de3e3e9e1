import { type NewRecord, type TaskStore, utcDay } from "./index.ts";
import { Lua } from "./lua.ts";
import { JOIN, RELEASE, TAKE } from "./outbox-scripts.ts";
import type { TaskOptions, TaskState } from "./record.ts";

const join = new Lua(JOIN);
const take = new Lua(TAKE);
const release = new Lua(RELEASE);

/** How long an armed window stays armed without its flush running (s): QStash's dedup window. */
const ARM_TTL_S = 600;
/** How long a formed batch is kept for its flush's retries (s). */
const BATCH_TTL_S = 7 * 86_400;

export type JoinResult =
  /** `at`: when the armed window's flush is due (ms). */
  | { kind: "armed"; window: string; at: number }
  | { kind: "joined"; window: string }
  | { kind: "skip"; state: TaskState }
  | { kind: "solo"; state: TaskState }
  | { kind: "stale" };

/** One item as the flush took it; `attempt` 0 when the batch no longer owns it (not to be recorded). */
export interface TakenItem {
  id: string;
  attempt: number;
  payload: unknown;
  /** The payload as stored, to rejoin the outbox with. */
  payloadJson: string;
  options: TaskOptions;
}

export type TakeResult =
  | { kind: "busy"; retryInMs: number }
  | { kind: "run"; attempt: number; items: TakenItem[]; next: { window: string; at: number; waiting: number } | null };

/** A fresh window id: unique without a counter, so a flushed Redis never reuses a batch id. */
export const newWindow = (now: number) =>
  now.toString(36) + [...crypto.getRandomValues(new Uint8Array(6))].map((b) => b.toString(36).padStart(2, "0")).join("");

/** The Redis side of coalesced tasks: outboxes, armed windows and batches (src/batch.ts). */
export class Outbox {
  readonly store: TaskStore;
  constructor(store: TaskStore) {
    this.store = store;
  }

  #keys(outbox: string) {
    const ob = `${this.store.prefix}ob:${outbox}`;
    return { outbox: ob, arm: `${ob}:arm` };
  }
  batchKey(batchId: string) {
    return `${this.store.prefix}b:${batchId}`;
  }

  /**
   * An item's delivery joins `outbox` (its claim on the task), arming a window when none is due
   * by `flushAt`. `due`: when a flush may take it (ms; now, or when the retry of an item that
   * failed alone is due); `flushAt`: when its flush should run (ms); `rejoin`: its batch puts back
   * an item that failed alone (else the item's delivery, which leaves one a batch holds alone).
   */
  async join(outbox: string, r: NewRecord, now: number, due: number, flushAt: number, rejoin = false): Promise<JoinResult> {
    const k = this.#keys(outbox);
    const [reply] = await join.run<[string, string, string?]>(this.store.redis, [
      {
        keys: [this.store.recKey(r.id), this.store.histKey(r.id), k.outbox, k.arm],
        args: [
          this.store.prefix,
          r.id,
          r.task,
          now,
          this.store.recordTtl(r),
          utcDay(now),
          ARM_TTL_S,
          newWindow(now),
          due,
          flushAt,
          rejoin ? "1" : "0",
          ...(await this.store.recordFields(r)),
        ],
      },
    ]);
    const [kind, value, at] = reply!;
    if (kind === "armed") return { kind, window: value, at: Number(at) };
    if (kind === "joined") return { kind, window: value };
    if (kind === "stale") return { kind };
    return kind === "solo" ? { kind, state: value as TaskState } : { kind: "skip", state: value as TaskState };
  }

  /** A flush takes (or, on a retry, finds again) its batch and claims the items it still owns. */
  async take(
    outbox: string,
    f: {
      window: string;
      batchId: string;
      messageId: string;
      maxSize: number;
      maxWaitMs: number;
      itemLeaseMs: number;
      batchLeaseMs: number;
    },
    now: number,
  ): Promise<TakeResult> {
    const k = this.#keys(outbox);
    const [reply] = await take.run<string[]>(this.store.redis, [
      {
        keys: [k.outbox, k.arm, this.batchKey(f.batchId)],
        args: [
          this.store.prefix,
          now,
          f.maxSize,
          f.itemLeaseMs,
          f.window,
          BATCH_TTL_S,
          utcDay(now),
          f.messageId,
          newWindow(now),
          ARM_TTL_S,
          f.batchLeaseMs,
          f.batchId,
          f.maxWaitMs,
        ],
      },
    ]);
    const r = reply!;
    if (r[0] === "busy") return { kind: "busy", retryInMs: Number(r[1]) };
    const items: TakenItem[] = [];
    for (let i = 5; i + 3 < r.length; i += 4) {
      items.push({
        id: r[i]!,
        attempt: Number(r[i + 1]),
        payload: JSON.parse(r[i + 2]!),
        payloadJson: r[i + 2]!,
        options: JSON.parse(r[i + 3]!),
      });
    }
    const next = r[2] ? { window: r[2], at: Number(r[3]), waiting: Number(r[4]) } : null;
    return { kind: "run", attempt: Number(r[1]), items, next };
  }

  /**
   * Each item's state while `batchId` holds it, else null: it took the item last, and the item is
   * not back in `outbox` (an item that failed alone waits there for a later batch). One round trip.
   */
  async heldStates(outbox: string, batchId: string, ids: string[]): Promise<(TaskState | null)[]> {
    const ob = this.#keys(outbox).outbox;
    const p = this.store.redis.pipeline();
    for (const id of ids) p.hget(this.store.recKey(id), "state").hget(this.store.recKey(id), "batch").zscore(ob, id);
    const rows = await p.exec<(string | number | null)[]>();
    return ids.map((_, i) => (rows[3 * i + 1] === batchId && rows[3 * i + 2] === null ? (rows[3 * i] as TaskState | null) : null));
  }

  /**
   * How many items wait in `outbox`, and the window armed for them with when its flush is due (ms;
   * 0 for an arm written before due times were kept), or null when none is. One round trip.
   */
  async pending(outbox: string): Promise<{ waiting: number; armed: { window: string; at: number } | null }> {
    const k = this.#keys(outbox);
    const [waiting, arm] = await this.store.redis.pipeline().zcard(k.outbox).get(k.arm).exec<[number, string | null]>();
    const m = arm ? /^([^@]+)@?(\d*)$/.exec(String(arm)) : null;
    return { waiting: Number(waiting), armed: m ? { window: m[1]!, at: Number(m[2] || 0) } : null };
  }

  /** Whether `id` waits in `outbox` (no batch holds it yet). */
  async waiting(outbox: string, id: string): Promise<boolean> {
    return (await this.store.redis.zscore(this.#keys(outbox).outbox, id)) !== null;
  }

  /**
   * What a batch holds: its ids (empty when it was never formed or has expired), how many runs of
   * it started, and when the last one's lease lapses (ms; 0 when none holds it).
   */
  async batch(batchId: string): Promise<{ ids: string[]; attempt: number; leaseUntil: number }> {
    const k = this.batchKey(batchId);
    const [raw, attempt, leaseUntil] = await this.store.redis
      .pipeline()
      .hget(k, "items")
      .hget(k, "attempt")
      .hget(k, "leaseUntil")
      .exec<[string | null, string | number | null, string | number | null]>();
    return { ids: raw ? raw.split(",") : [], attempt: Number(attempt ?? 0), leaseUntil: Number(leaseUntil ?? 0) };
  }

  /** Clears a batch's lease, so the message that replaces a rate-limited flush may take it at once. */
  async release(batchId: string): Promise<void> {
    await release.run(this.store.redis, [{ keys: [this.batchKey(batchId)], args: [] }]);
  }
}
