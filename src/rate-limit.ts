import type { Redis } from "@upstash/redis/cloudflare";
import { ipBucket } from "./client-ip.ts";
import { ApiError } from "./errors.ts";
import { Lua } from "./store/lua.ts";

/** At most `requests` per `window` seconds, counted over a sliding window. */
export interface Limit {
  /** Requests allowed per window. */
  requests: number;
  /** Window length, seconds. */
  window: number;
}

/**
 * The limits of one public task; `false` turns one off. Over any of them the call is a 429 and
 * nothing is enqueued.
 * @example { ip: { requests: 5, window: 60 }, recipient: { requests: 3, window: 600 } }
 */
export interface PublicLimits {
  /** Per client IP (an IPv6 address by its /64, see ipBucket). @default { requests: 10, window: 60 } */
  ip?: Limit | false;
  /** Per value of the task's `recipient` field ({@link recipientBucket}, hashed). @default { requests: 3, window: 600 } */
  recipient?: Limit | false;
  /** All callers of the task together. @default { requests: 300, window: 60 } */
  task?: Limit | false;
}

export const DEFAULT_LIMITS: Required<{ [K in keyof PublicLimits]: Limit }> = {
  ip: { requests: 10, window: 60 },
  recipient: { requests: 3, window: 600 },
  task: { requests: 300, window: 60 },
};

export type LimitName = keyof PublicLimits;

/** Who a call counts against: the client IP and, when the task names one, the recipient. */
export interface LimitSubjects {
  ip: string;
  recipient?: string;
}

/** The policy the caller sees: its own IP's (a recipient's count is nobody else's business). */
export interface LimitOutcome {
  headers: Record<string, string>;
}

/**
 * A sliding-window log per limit: a sorted set of the calls counted in the last `window`, scored
 * by their time (ms). Exact (no approximation across fixed windows), so Retry-After is when room
 * really comes; it keeps at most `requests` members per key, since a refused call adds none.
 * All of one call's limits are checked in one script, atomically: a call over any of them counts
 * against none. KEYS: one per limit. ARGV: now (ms), a member unique to this call, then each
 * key's requests and window (ms). Returns 1 (counted) or 0 (refused), then per key: 1 if it had
 * room (0 if full), the calls it still allows after this one, and the ms until it next frees one.
 */
const SLIDING_WINDOW = new Lua(`
local now, member = tonumber(ARGV[1]), ARGV[2]
local out, counted = { 1 }, true
for i, key in ipairs(KEYS) do
  local max, win = tonumber(ARGV[1 + i * 2]), tonumber(ARGV[2 + i * 2])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - win)
  local n = redis.call('ZCARD', key)
  -- Under the limit, the oldest call in the window leaves it first; at it, room comes once the
  -- calls beyond max - 1 have left.
  local at = redis.call('ZRANGE', key, math.max(0, n - max), math.max(0, n - max), 'WITHSCORES')[2]
  local wait = (at and tonumber(at) or now) + win - now
  local room = n < max
  if not room then counted = false end
  out[i * 3 - 1], out[i * 3], out[i * 3 + 1] = room and 1 or 0, room and max - n - 1 or 0, wait
end
if counted then
  for i, key in ipairs(KEYS) do
    redis.call('ZADD', key, now, member)
    redis.call('PEXPIRE', key, ARGV[2 + i * 2])
  end
else
  out[1] = 0
end
return out`);

// Keys known to be full, and until when (ms): a caller that keeps calling while over its limit is
// refused without a Redis call. Exact, not a guess: a full key takes no new call until its oldest
// leaves the window. One map per client, as a client is one store.
const full = new WeakMap<Redis, Map<string, number>>();
const MAX_REMEMBERED = 10_000;

function remember(redis: Redis, key: string, until: number, now: number) {
  let m = full.get(redis);
  if (!m) full.set(redis, (m = new Map()));
  if (m.size >= MAX_REMEMBERED) for (const [k, t] of m) if (t <= now) m.delete(k);
  if (m.size >= MAX_REMEMBERED) m.clear();
  m.set(key, until);
}

/** The limits in force: the task's, each falling back to its default. */
export function resolveLimits(limits: PublicLimits = {}): { name: LimitName; limit: Limit }[] {
  return (Object.keys(DEFAULT_LIMITS) as LimitName[])
    .map((name) => ({ name, limit: limits[name] === undefined ? DEFAULT_LIMITS[name] : limits[name] }))
    .filter((x): x is { name: LimitName; limit: Limit } => x.limit !== false);
}

/**
 * Counts one call against every limit of `task`, in one Redis round trip, or, when any limit is
 * full, against none of them and throws a 429 `rate_limited` with `Retry-After` and the IETF
 * `RateLimit` / `RateLimit-Policy` headers (draft-ietf-httpapi-ratelimit-headers-10). A Redis that
 * does not answer is a 503 (redisIo), never an unlimited public route.
 */
export async function enforceLimits(
  redis: Redis,
  prefix: string,
  task: string,
  limits: PublicLimits | undefined,
  who: LimitSubjects,
): Promise<LimitOutcome> {
  const active = resolveLimits(limits).filter((x) => x.name !== "recipient" || who.recipient !== undefined);
  if (active.length === 0) return { headers: {} };
  const identifiers: Record<LimitName, string> = {
    ip: ipBucket(who.ip),
    recipient: who.recipient ? await digest(recipientBucket(who.recipient)) : "",
    task: "all",
  };
  const keys = active.map((a) => `${prefix}rl:${task}:${a.name}:${identifiers[a.name]}`);
  const now = Date.now();
  const known = full.get(redis);
  let counted: boolean;
  let view: (Active & { room: boolean; remaining: number; wait: number })[];
  // Every limit this isolate knows to be full, not just the first: the call waits for all of them.
  const remembered = known ? active.map((a, j) => ({ ...a, room: false, remaining: 0, wait: (known.get(keys[j]!) ?? 0) - now })) : [];
  if (remembered.some((v) => v.wait > 0)) {
    counted = false;
    view = remembered.filter((v) => v.wait > 0);
  } else {
    // Whole milliseconds: PEXPIRE refuses a fraction (16.1 s is 16100.000000000002 ms in floating
    // point), and the script would fail after its ZADD, leaving a key that never expires.
    const args = [now, crypto.randomUUID(), ...active.flatMap((a) => [a.limit.requests, Math.max(1, Math.round(a.limit.window * 1000))])];
    const [reply] = await SLIDING_WINDOW.run<number[]>(redis, [{ keys, args }]);
    counted = reply![0] === 1;
    view = active.map((a, j) => ({ ...a, room: reply![1 + j * 3] === 1, remaining: reply![2 + j * 3]!, wait: reply![3 + j * 3]! }));
    for (const [j, v] of view.entries()) if (!v.room) remember(redis, keys[j]!, now + v.wait, now);
  }
  if (!counted) {
    // Room for this call comes when every full limit has some: name the one that frees last.
    const denied = view.filter((v) => !v.room).reduce((a, b) => (b.wait > a.wait ? b : a));
    const reset = seconds(denied.wait);
    throw new ApiError(429, {
      code: "rate_limited",
      message: `[celeriac] too many requests (${denied.name} limit: ${denied.limit.requests} per ${denied.limit.window} s); try again in ${reset} s`,
      retryAfter: reset,
      extra: { limit: denied.name },
      headers: policyHeaders(denied, 0, reset),
    });
  }
  const ip = view.find((v) => v.name === "ip");
  return { headers: ip ? policyHeaders(ip, ip.remaining, seconds(ip.wait)) : {} };
}

type Active = ReturnType<typeof resolveLimits>[number];

const seconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

function policyHeaders(p: Active, remaining: number, reset: number): Record<string, string> {
  return {
    "RateLimit-Policy": `"${p.name}";q=${p.limit.requests};w=${p.limit.window}`,
    RateLimit: `"${p.name}";r=${remaining};t=${reset}`,
  };
}

/**
 * The bucket a recipient counts in: trimmed and lower-cased; an email address without its `+tag`
 * (and, at Gmail, without dots in the local part), so the variants of one inbox share one
 * allowance instead of each mailing it up to the limit.
 */
export function recipientBucket(recipient: string): string {
  const s = recipient.trim().toLowerCase();
  const at = s.lastIndexOf("@");
  if (at <= 0 || s.includes("/")) return s;
  let local = s.slice(0, at).replace(/\+.*$/, "");
  let domain = s.slice(at + 1);
  if (domain === "googlemail.com") domain = "gmail.com";
  if (domain === "gmail.com") local = local.replace(/\./g, "");
  return `${local}@${domain}`;
}

async function digest(s: string): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(s));
  return [...new Uint8Array(d).slice(0, 16)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
