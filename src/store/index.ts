import type { Redis } from "@upstash/redis/cloudflare";
import type { CallbackSpec } from "../callback-option.ts";
import { redact } from "../redact.ts";
import { Lua, redisIo } from "./lua.ts";
import { FINAL_STATES, pairs, recordFromHash, recordsFromFlat, TASK_STATES, type TaskRecord, type TaskState } from "./record.ts";
import { CLAIM, CREATE, DISCARD, LIST, TRANSITION } from "./scripts.ts";

const create = new Lua(CREATE);
const claim = new Lua(CLAIM);
const transition = new Lua(TRANSITION);
const list = new Lua(LIST);
const discard = new Lua(DISCARD);

/** How long an idempotency key maps to its task (s): 24 h, whatever QStash's dedup window is. */
export const IDEMPOTENCY_TTL_S = 86_400;
/** Extra time an unfinished record is kept beyond its due time, to cover retries (s). */
const UNFINISHED_GRACE_S = 7 * 86_400;

/** What a new record is made of. */
export interface NewRecord {
  id: string;
  task: string;
  state: TaskState;
  payload: unknown;
  options: TaskRecord["options"];
  createdAt: number;
  runAt: number;
  idempotencyKey?: string;
  scheduleId?: string;
  /** Generation: bumped by each retry through the API, so a stale failure callback is ignored. */
  gen?: number;
  /** Payload paths kept out of the record (see src/redact.ts). */
  redact?: readonly string[];
  /** Where the caller wants to hear how it went. */
  callback?: CallbackSpec;
}

export type CreateResult = { kind: "new" } | { kind: "dup"; createdAt: number } | { kind: "mismatch"; task: string };
export type ClaimResult =
  | { kind: "run"; attempt: number }
  | { kind: "skip"; state: TaskState }
  | { kind: "stale" }
  | { kind: "busy"; retryInMs: number };
export type TransitionResult = { kind: "ok"; from: TaskState } | { kind: "conflict"; state: TaskState } | { kind: "missing" };

/** A state change: from which states, to which, and what to record with it. */
export interface Transition {
  from: readonly TaskState[];
  to: TaskState;
  /**
   * The attempt that must still hold the task (its claim), so a stale delivery changes nothing;
   * also noted in the history entry.
   */
  attempt?: number;
  /** The generation the record must have. */
  gen?: number;
  /** Leave the daily counters alone (for undoing a change that was never real). */
  uncounted?: boolean;
  at: number;
  fields?: Record<string, string | number>;
  /** Error recorded in the history entry. */
  error?: { code: string; message: string; retryable: boolean };
}

/** The result store: task records in Upstash Redis, each change one atomic round trip. */
export class TaskStore {
  readonly redis: Redis;
  readonly prefix: string;
  constructor(redis: Redis, prefix = "celeriac:") {
    this.redis = redis;
    this.prefix = prefix;
  }

  /** Key of a task's record (a hash). */
  recKey(id: string) {
    return `${this.prefix}t:${id}`;
  }
  /** Key of a task's history (a list). */
  histKey(id: string) {
    return `${this.prefix}t:${id}:h`;
  }
  /** Idempotency keys are scoped by API key name, so two callers cannot collide. */
  idemKey(scope: string, key: string) {
    return `${this.prefix}idem:${scope}:${key}`;
  }

  /** TTL of an unfinished record (s): until it is due, plus room for retries and its result. */
  recordTtl(r: NewRecord) {
    return Math.ceil(Math.max(0, r.runAt - r.createdAt) / 1000) + UNFINISHED_GRACE_S + r.options.resultTtl;
  }

  /**
   * Field/value pairs of a record besides those the scripts set themselves: the payload as kept
   * (its redacted paths replaced), and the hash of the whole payload, which the scripts compare.
   */
  async recordFields(r: NewRecord) {
    const whole = JSON.stringify(r.payload ?? null);
    const kept = redact(r.payload ?? null, r.redact ?? []);
    const hash = [...new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(whole)))]
      .map((b) => b.toString(16).padStart(2, "0"))
      .join("");
    const fields: (string | number)[] = ["payloadHash", hash, "payload", kept.redacted.length ? JSON.stringify(kept.value) : whole];
    if (kept.redacted.length) fields.push("redacted", JSON.stringify(kept.redacted));
    fields.push("options", JSON.stringify(r.options), "runAt", r.runAt);
    if (r.idempotencyKey) fields.push("idempotencyKey", r.idempotencyKey);
    if (r.scheduleId) fields.push("scheduleId", r.scheduleId);
    if (r.gen) fields.push("gen", r.gen);
    if (r.callback) fields.push("callback", JSON.stringify(r.callback));
    return fields;
  }

  /** Creates records in one round trip; `idemKeys[i]` is the scoped idempotency key or "". */
  async createMany(records: NewRecord[], idemKeys: string[]): Promise<CreateResult[]> {
    const fields = await Promise.all(records.map((r) => this.recordFields(r)));
    const replies = await create.run<[string, string?]>(
      this.redis,
      records.map((r, i) => ({
        keys: [this.recKey(r.id), this.histKey(r.id), idemKeys[i] ?? ""],
        args: [
          this.prefix,
          r.id,
          r.task,
          r.state,
          r.createdAt,
          this.recordTtl(r),
          IDEMPOTENCY_TTL_S,
          JSON.stringify({ at: r.createdAt, state: r.state }),
          utcDay(r.createdAt),
          ...fields[i]!,
        ],
      })),
    );
    return replies.map(
      ([kind, value]): CreateResult =>
        kind === "dup" ? { kind, createdAt: Number(value) } : kind === "mismatch" ? { kind, task: value! } : { kind: "new" },
    );
  }

  /** Claims one delivery attempt; recreates the record from the message when it is missing. */
  async claim(r: NewRecord, messageId: string, now: number, leaseMs: number): Promise<ClaimResult> {
    const [reply] = await claim.run<[string, string]>(this.redis, [
      {
        keys: [this.recKey(r.id), this.histKey(r.id)],
        args: [this.prefix, r.id, r.task, now, leaseMs, messageId, this.recordTtl(r), utcDay(now), ...(await this.recordFields(r))],
      },
    ]);
    const [kind, value] = reply!;
    if (kind === "run") return { kind, attempt: Number(value) };
    if (kind === "busy") return { kind, retryInMs: Number(value) };
    if (kind === "stale") return { kind };
    return { kind: "skip", state: value as TaskState };
  }

  /** Applies a state change atomically; finished records start their `ttl` (s) countdown. */
  async transition(id: string, t: Transition, ttl?: number): Promise<TransitionResult> {
    const [r] = await this.transitionMany([{ id, t, ...(ttl !== undefined ? { ttl } : {}) }]);
    return r!;
  }

  /** Several state changes (of different tasks) in one round trip, each atomic on its own. */
  async transitionMany(changes: { id: string; t: Transition; ttl?: number }[]): Promise<TransitionResult[]> {
    if (changes.length === 0) return [];
    const replies = await transition.run<[string, string?]>(
      this.redis,
      changes.map(({ id, t, ttl }) => {
        const fields = Object.entries(t.fields ?? {}).flat();
        if (FINAL_STATES.includes(t.to)) fields.push("finishedAt", t.at);
        const entry = JSON.stringify({
          at: t.at,
          state: t.to,
          ...(t.attempt ? { attempt: t.attempt } : {}),
          ...(t.error ? { error: t.error } : {}),
        });
        return {
          keys: [this.recKey(id), this.histKey(id)],
          args: [
            this.prefix,
            id,
            t.from.join(","),
            t.attempt ?? "",
            t.to,
            ttl ?? "",
            entry,
            utcDay(t.at),
            t.at,
            t.gen ?? "",
            t.uncounted ? "1" : "",
            ...fields,
          ],
        };
      }),
    );
    return replies.map(([kind, value]): TransitionResult => {
      if (kind === "ok") return { kind, from: value as TaskState };
      if (kind === "conflict") return { kind, state: value as TaskState };
      return { kind: "missing" };
    });
  }

  /** Undoes records an enqueue wrote when its publish failed, so nothing is left half-written. */
  async discard(ids: string[], idemKeys: string[], at: number): Promise<void> {
    await discard.run(
      this.redis,
      ids.map((id, i) => ({ keys: [this.recKey(id), this.histKey(id), idemKeys[i] ?? ""], args: [this.prefix, id, utcDay(at)] })),
    );
  }

  /**
   * Spends a signature token (its `jti`) once: true the first time, false for a replay. Kept
   * until the token expires (`exp`, unix seconds), after which the token is refused anyway.
   */
  async spendToken(jti: string, exp: number): Promise<boolean> {
    const reply = await redisIo(() => this.redis.set(`${this.prefix}jti:${jti}`, "1", { nx: true, exat: exp + 1 }));
    return reply !== null;
  }

  /** The record with its history, or null for an id never seen (or expired). */
  async get(id: string): Promise<TaskRecord | null> {
    // The client runs without automatic deserialization, so HGETALL arrives as a flat list.
    const [flat, history] = await redisIo(() =>
      this.redis.pipeline().hgetall(this.recKey(id)).lrange(this.histKey(id), 0, -1).exec<[string[] | null, string[]]>(),
    );
    const hash = pairs(flat ?? []);
    if (!hash.state) return null;
    return recordFromHash(hash, history);
  }

  /** One page, newest first; cost grows with the page, not with the number of records. */
  async list(q: { state?: TaskState; task?: string; cursor?: string; limit: number }) {
    const idx = q.task ? (q.state ? `i:task:${q.task}:state:${q.state}` : `i:task:${q.task}`) : q.state ? `i:state:${q.state}` : "i:all";
    const [score, after] = q.cursor ? decodeCursor(q.cursor) : ["+inf", ""];
    const [reply] = await list.run<[string, string, string, (string | number)[]]>(this.redis, [
      { keys: [this.prefix + idx], args: [this.prefix, score, after, q.limit] },
    ]);
    const [more, lastScore, lastId, flat] = reply!;
    return { tasks: recordsFromFlat(flat), cursor: more === "more" ? encodeCursor(lastScore, lastId) : undefined };
  }

  /** How many records each state's index holds now (one round trip). */
  async countByState(): Promise<Record<TaskState, number>> {
    const p = this.redis.pipeline();
    for (const s of TASK_STATES) p.zcard(`${this.prefix}i:state:${s}`);
    const counts = await redisIo(() => p.exec<number[]>());
    return Object.fromEntries(TASK_STATES.map((s, i) => [s, Number(counts[i] ?? 0)])) as Record<TaskState, number>;
  }

  /** Tasks finished per minute over the last `minutes` (at most 60) up to `now`, oldest first. */
  async perMinute(now: number, minutes = 60): Promise<MinuteCount[]> {
    const last = Math.floor(now / 60_000);
    const hour = Math.floor(last / 60);
    const [older, current] = await redisIo(() =>
      this.redis
        .pipeline()
        .hgetall(`${this.prefix}tput:${hour - 1}`)
        .hgetall(`${this.prefix}tput:${hour}`)
        .exec<[string[] | null, string[] | null]>(),
    );
    const byHour = new Map([
      [hour - 1, pairs(older ?? [])],
      [hour, pairs(current ?? [])],
    ]);
    const out: MinuteCount[] = [];
    for (let m = last - Math.min(minutes, 60) + 1; m <= last; m++) {
      const h = byHour.get(Math.floor(m / 60)) ?? {};
      out.push({ at: m * 60_000, succeeded: Number(h[`${m % 60}:s`] ?? 0), failed: Number(h[`${m % 60}:f`] ?? 0) });
    }
    return out;
  }
}

/** Tasks finished in one minute, by outcome. */
export interface MinuteCount {
  /** Start of the minute (ms since the epoch). */
  at: number;
  succeeded: number;
  failed: number;
}

/** The UTC day of a time (ms), `YYYY-MM-DD`: the key of that day's statistics. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** A page cursor: where the page ended in a sorted index (score and id). */
export function encodeCursor(score: string, id: string) {
  return btoa(`${score}|${id}`).replace(/=+$/, "");
}

/** Throws on a cursor that was not made by {@link encodeCursor}. */
export function decodeCursor(cursor: string): [string, string] {
  let raw: string;
  try {
    raw = atob(cursor);
  } catch {
    throw new RangeError("cursor is not one this API returned");
  }
  const m = /^(\d+(?:\.\d+)?)\|([\w-]+)$/.exec(raw);
  if (!m) throw new RangeError("cursor is not one this API returned");
  return [m[1]!, m[2]!];
}
