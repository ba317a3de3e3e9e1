import { Ratelimit } from "@upstash/ratelimit";
import type { Redis } from "@upstash/redis/cloudflare";
import { ipBucket } from "./client-ip.ts";
import { ApiError } from "./errors.ts";

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

// One limiter per (client, task, policy) for the isolate's lifetime: each keeps an in-memory
// cache of identifiers already over their limit, which answers repeats without a Redis call.
const limiters = new WeakMap<Redis, Map<string, Ratelimit>>();

function limiter(redis: Redis, prefix: string, task: string, name: LimitName, l: Limit): Ratelimit {
  let byKey = limiters.get(redis);
  if (!byKey) limiters.set(redis, (byKey = new Map()));
  const key = `${task}\n${name}\n${l.requests}/${l.window}`;
  let r = byKey.get(key);
  if (!r) {
    r = new Ratelimit({
      redis,
      limiter: Ratelimit.slidingWindow(l.requests, `${l.window} s`),
      prefix: `${prefix}rl:${task}:${name}`,
      analytics: false,
      // No fail-open: a Redis that does not answer is a 503, never an unlimited public route.
      timeout: 0,
    });
    byKey.set(key, r);
  }
  return r;
}

/** The limits in force: the task's, each falling back to its default. */
export function resolveLimits(limits: PublicLimits = {}): { name: LimitName; limit: Limit }[] {
  return (Object.keys(DEFAULT_LIMITS) as LimitName[])
    .map((name) => ({ name, limit: limits[name] === undefined ? DEFAULT_LIMITS[name] : limits[name] }))
    .filter((x): x is { name: LimitName; limit: Limit } => x.limit !== false);
}

/**
 * Counts one call against every limit of `task` and
 * throws a 429 `rate_limited` with `Retry-After` and the IETF `RateLimit` / `RateLimit-Policy`
 * headers (draft-ietf-httpapi-ratelimit-headers-10) when any is exceeded.
 */
export async function enforceLimits(
  /** An auto-pipelining client (Services.redisBatched): the limits, asked in one tick, travel in one request. */
  redis: Redis,
  prefix: string,
  task: string,
  limits: PublicLimits | undefined,
  who: LimitSubjects,
): Promise<LimitOutcome> {
  const active = resolveLimits(limits).filter((x) => x.name !== "recipient" || who.recipient !== undefined);
  const identifiers: Record<LimitName, string> = {
    ip: ipBucket(who.ip),
    recipient: who.recipient ? await digest(recipientBucket(who.recipient)) : "",
    task: "all",
  };
  const results = await Promise.all(active.map((a) => limiter(redis, prefix, task, a.name, a.limit).limit(identifiers[a.name])));
  const now = Date.now();
  const view = active.map((a, i) => ({
    ...a,
    success: results[i]!.success,
    remaining: Math.max(0, results[i]!.remaining),
    reset: Math.max(1, Math.ceil((results[i]!.reset - now) / 1000)),
  }));
  const denied = view.find((v) => !v.success);
  if (denied) {
    throw new ApiError(429, {
      code: "rate_limited",
      message: `[celeriac] too many requests (${denied.name} limit: ${denied.limit.requests} per ${denied.limit.window} s); try again in ${denied.reset} s`,
      retryAfter: denied.reset,
      extra: { limit: denied.name },
      headers: policyHeaders(denied, 0),
    });
  }
  const ip = view.find((v) => v.name === "ip");
  return { headers: ip ? policyHeaders(ip, ip.remaining) : {} };
}

function policyHeaders(p: { name: LimitName; limit: Limit; reset: number }, remaining: number): Record<string, string> {
  return {
    "RateLimit-Policy": `"${p.name}";q=${p.limit.requests};w=${p.limit.window}`,
    RateLimit: `"${p.name}";r=${remaining};t=${p.reset}`,
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
