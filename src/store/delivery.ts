// What Resend reports about the emails a task sent (its delivery status), and the addresses that
// must not be mailed again (suppressions), kept beside the task records.
import type { TaskStore } from "./index.ts";
import { Lua, redisIo } from "./lua.ts";

/** Where an email is, as Resend's events tell it. */
export type DeliveryStatus = "sent" | "delivered" | "delivery_delayed" | "bounced" | "complained";
export const DELIVERY_STATUSES: readonly DeliveryStatus[] = ["sent", "delivered", "delivery_delayed", "bounced", "complained"];

/**
 * How far along each status is: events may arrive out of order, and a later one never takes a
 * task back (a `delivery_delayed` that arrives after `delivered` only joins the history).
 */
const RANK: Record<DeliveryStatus, number> = { sent: 1, delivery_delayed: 2, delivered: 3, bounced: 4, complained: 5 };

/** One event about one email of the task. */
export interface DeliveryEntry {
  status: DeliveryStatus;
  /** ISO 8601, when Resend says it happened. */
  at: string;
  emailId: string;
  /** For a bounce: Resend's classification (`Permanent` is a hard bounce). */
  bounce?: { type?: string; subType?: string; message?: string };
}

/** The task's delivery status: the furthest status reached, and every event, newest first. */
export interface Delivery {
  status: DeliveryStatus;
  at: string;
  history: DeliveryEntry[];
}

/** An address celeriac no longer mails: it hard-bounced or its owner complained. */
export interface Suppression {
  address: string;
  reason: "bounced" | "complained";
  at: string;
  taskId: string;
  emailId: string;
}

/** How long a Resend event id is remembered, so a replay changes nothing (s). Svix retries for about a day. */
const SEEN_TTL_S = 3 * 86_400;
/** Delivery history entries kept per task. */
const KEEP = 20;

/**
 * KEYS: record, seen marker of this event id, suppressions hash. ARGV: seen ttl (s), status,
 * rank, at (ISO), entry JSON, history cap, then address/suppression JSON pairs.
 * Returns {"dup", status it changed to or ""}, {"unknown"} (no such task) or {"ok", changed
 * status or "", delivery JSON}. The marker is written with the change, so a replay is a no-op.
 */
const APPLY = new Lua(`
local rec, seen, sup = KEYS[1], KEYS[2], KEYS[3]
local before = redis.call('GET', seen)
if before then return { 'dup', before } end
if redis.call('EXISTS', rec) == 0 then return { 'unknown' } end
local status, rank, at = ARGV[2], tonumber(ARGV[3]), ARGV[4]
local RANK = { ${Object.entries(RANK)
  .map(([s, r]) => `${s} = ${r}`)
  .join(", ")} }
local raw = redis.call('HGET', rec, 'delivery')
local d = raw and cjson.decode(raw) or { history = {} }
local changed = ''
if rank > (RANK[d.status] or 0) then d.status = status; d.at = at; changed = status end
table.insert(d.history, 1, cjson.decode(ARGV[5]))
while #d.history > tonumber(ARGV[6]) do table.remove(d.history) end
local out = cjson.encode(d)
redis.call('HSET', rec, 'delivery', out)
for i = 7, #ARGV, 2 do redis.call('HSET', sup, ARGV[i], ARGV[i + 1]) end
redis.call('SET', seen, changed, 'EX', tonumber(ARGV[1]))
return { 'ok', changed, out }
`);

export type Applied =
  | { kind: "dup"; changed?: DeliveryStatus }
  | { kind: "unknown" }
  | { kind: "ok"; changed?: DeliveryStatus; delivery: Delivery };

const suppressionsKey = (store: TaskStore) => `${store.prefix}suppressed`;

/**
 * Records one Resend event on its task atomically, with the suppressions it causes, once per
 * event id: a replay of the same id answers "dup" (with what the first one changed).
 */
export async function applyEmailEvent(
  store: TaskStore,
  e: { eventId: string; taskId: string; entry: DeliveryEntry; suppress: Suppression[] },
): Promise<Applied> {
  const [reply] = await APPLY.run<[string, string?, string?]>(store.redis, [
    {
      keys: [store.recKey(e.taskId), `${store.prefix}resend:event:${e.eventId}`, suppressionsKey(store)],
      args: [
        SEEN_TTL_S,
        e.entry.status,
        RANK[e.entry.status],
        e.entry.at,
        JSON.stringify(e.entry),
        KEEP,
        ...e.suppress.flatMap((s) => [s.address, JSON.stringify(s)]),
      ],
    },
  ]);
  const [kind, changed, delivery] = reply!;
  const status = changed ? (changed as DeliveryStatus) : undefined;
  if (kind === "unknown") return { kind };
  if (kind === "dup") return { kind, ...(status ? { changed: status } : {}) };
  return { kind: "ok", ...(status ? { changed: status } : {}), delivery: JSON.parse(delivery!) as Delivery };
}

/** Which of these addresses (bare, any case) are suppressed. */
export async function suppressionsOf(store: TaskStore, addresses: string[]): Promise<Suppression[]> {
  const keys = [...new Set(addresses.map((a) => a.toLowerCase()))];
  if (keys.length === 0) return [];
  // Without automatic deserialization HMGET arrives as a plain list, one value (or null) per key.
  const found = (await redisIo(() => store.redis.hmget(suppressionsKey(store), ...keys))) as unknown as (string | null)[] | null;
  return (found ?? []).filter((v): v is string => typeof v === "string").map((v) => JSON.parse(v) as Suppression);
}

/** One page of suppressions (Redis HSCAN order); `cursor` "0" starts, a returned undefined ends. */
export async function listSuppressions(store: TaskStore, cursor: string, count: number) {
  const [next, flat] = await redisIo(() => store.redis.hscan(suppressionsKey(store), cursor, { count }));
  const suppressions: Suppression[] = [];
  for (let i = 1; i < flat.length; i += 2) suppressions.push(JSON.parse(String(flat[i])) as Suppression);
  return { suppressions, cursor: String(next) === "0" ? undefined : String(next) };
}

/** Forgets a suppression; false when the address was not suppressed. */
export async function removeSuppression(store: TaskStore, address: string): Promise<boolean> {
  return (await redisIo(() => store.redis.hdel(suppressionsKey(store), address.toLowerCase()))) === 1;
}
