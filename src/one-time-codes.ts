import type { Redis } from "@upstash/redis/cloudflare";
import { base64Url, hmac } from "./hmac.ts";
import { Lua } from "./store/lua.ts";

/** How long a code may be used, seconds. @default 600 (10 minutes) */
export const CODE_TTL_S = 600;
/** A new request for the same address and purpose within this long sends nothing, seconds. @default 60 */
export const COOLDOWN_S = 60;
/** Wrong tries after which the code is dead. */
export const MAX_TRIES = 5;
/** Lifetime of the token a correct code earns, seconds. @default 600 */
export const TOKEN_TTL_S = 600;
/** A used or expired code's record stays this much longer, so a late try is told why (ms). */
const TOMBSTONE_MS = 3_600_000;

const enc = new TextEncoder();
const hex = (b: ArrayBuffer) => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, "0")).join("");

/** The address as compared: trimmed and lower-cased (mailboxes are matched case-insensitively in practice). */
export const normalizeEmail = (email: string) => email.trim().toLowerCase();

/**
 * The code of one verification task: six digits drawn uniformly (rejection sampling, no modulo
 * bias) from HMAC(secret, task id). The task id carries 80 bits from crypto.getRandomValues; keying
 * it makes the code unguessable from the id, and deriving it makes every retry of the task mail the
 * same code, so a retried send (same Resend idempotency key) can never leave a mailed code unusable.
 */
export async function codeFor(secret: string, taskId: string): Promise<string> {
  for (let round = 0; ; round++) {
    const words = new DataView(await hmac(secret, `code\n${taskId}\n${round}`));
    for (let i = 0; i < 8; i++) {
      const n = words.getUint32(i * 4);
      // 4_294_000_000 is the largest multiple of 10^6 below 2^32: values above it would bias.
      if (n < 4_294_000_000) return String(n % 1_000_000).padStart(6, "0");
    }
  }
}

/** Where one address+purpose keeps its state; the address itself never appears in a key. */
async function keys(prefix: string, email: string, purpose: string) {
  const id = hex(await crypto.subtle.digest("SHA-256", enc.encode(`${normalizeEmail(email)}\n${purpose}`))).slice(0, 32);
  return { cooldown: `${prefix}cooldown:${id}`, record: `${prefix}code:${id}`, tries: `${prefix}tries:${id}` };
}

const keyedHash = async (secret: string, email: string, purpose: string, code: string) =>
  hex(await hmac(secret, `hash\n${normalizeEmail(email)}\n${purpose}\n${code}`));

// The record is "<expiry ms>|<keyed hash>", or "<expiry ms>|used|<keyed hash>" once a correct code
// was entered. A retry of the task that made the standing code (same hash) mails it again but
// neither revives a used code nor clears its wrong tries; an unused one gets the new expiry.
const ISSUE = new Lua(`
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
end
local raw = redis.call('GET', KEYS[2])
if raw and string.sub(raw, -#ARGV[5]) == ARGV[5] then
  if string.find(raw, '|used|', 1, true) then return 1 end
  redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
  return 1
end
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
redis.call('DEL', KEYS[3])
return 1`);

const CHECK = new Lua(`
local raw = redis.call('GET', KEYS[1])
if not raw then return {'missing', 0} end
local bar = string.find(raw, '|', 1, true)
local exp, h = tonumber(string.sub(raw, 1, bar - 1)), string.sub(raw, bar + 1)
if string.sub(h, 1, 5) == 'used|' then return {'used', 0} end
if tonumber(ARGV[2]) > exp then return {'expired', 0} end
local n = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], math.max(1, redis.call('PTTL', KEYS[1])))
local max = tonumber(ARGV[3])
if n > max then return {'dead', 0} end
local a, b = h, ARGV[1]
local d = (#a == #b) and 0 or 1
for i = 1, #a do d = d + math.abs(string.byte(a, i) - (string.byte(b, i) or 0)) end
if d ~= 0 then return {'wrong', max - n} end
redis.call('SET', KEYS[1], exp .. '|used|' .. h, 'PX', math.max(1, redis.call('PTTL', KEYS[1])))
return {'ok', 0}`);

/**
 * One-time codes for a task (ctx.codes): kept under the task's own keys, as keyed hashes only.
 * @example const { code } = await ctx.codes.issue({ subject: email, purpose, secret: ctx.env.TOKEN_SECRET })
 */
export interface OneTimeCodes {
  /**
   * Makes the code for `subject` (an address) and `purpose`, replacing an earlier one; within the
   * cooldown of another request for the same pair, makes none (`code: null`): send nothing then.
   */
  issue(o: {
    subject: string;
    purpose: string;
    secret: string;
    ttl?: number;
    cooldown?: number;
  }): Promise<{ code: string | null; expiresAt: number }>;
}

/** Where a task's codes live: inside its key-value namespace. */
export const codesPrefix = (storePrefix: string, task: string) => `${storePrefix}kv:${task}:codes:`;

/** The {@link OneTimeCodes} of one run of a task. */
export function codesFor(redis: Redis, storePrefix: string, task: string, taskId: string): OneTimeCodes {
  return { issue: (o) => issueCode(redis, codesPrefix(storePrefix, task), { ...o, email: o.subject, taskId }) };
}

export interface IssueOptions {
  secret: string;
  email: string;
  purpose: string;
  /** The task id: the code is derived from it and the cooldown is held in its name. */
  taskId: string;
  /** @default {@link CODE_TTL_S} */
  ttl?: number;
  /** @default {@link COOLDOWN_S} */
  cooldown?: number;
  now?: number;
}

/**
 * Makes the code for one request: one Redis round trip that takes the cooldown, replaces any
 * earlier code and clears its wrong tries. Within another request's cooldown: `{ code: null }`.
 * A retry of the same task gets the same code again.
 */
export async function issueCode(redis: Redis, prefix: string, o: IssueOptions): Promise<{ code: string | null; expiresAt: number }> {
  const now = o.now ?? Date.now();
  const ttlMs = (o.ttl ?? CODE_TTL_S) * 1000;
  const k = await keys(prefix, o.email, o.purpose);
  const code = await codeFor(o.secret, o.taskId);
  const hash = await keyedHash(o.secret, o.email, o.purpose, code);
  const [issued] = await ISSUE.run<number>(redis, [
    {
      keys: [k.cooldown, k.record, k.tries],
      args: [o.taskId, (o.cooldown ?? COOLDOWN_S) * 1000, `${now + ttlMs}|${hash}`, ttlMs + TOMBSTONE_MS, hash],
    },
  ]);
  return { code: issued === 1 ? code : null, expiresAt: now + ttlMs };
}

export type CheckOutcome =
  | { ok: true }
  | { ok: false; reason: "missing" | "expired" | "used" | "dead" }
  | { ok: false; reason: "wrong"; triesLeft: number };

/**
 * Checks a code in one Redis round trip, atomically: every try is counted before the compare
 * (so parallel guesses share the same {@link MAX_TRIES}), the keyed hashes are compared without an
 * early exit, and a correct code is marked used in the same step (single use).
 */
export async function checkCode(
  redis: Redis,
  prefix: string,
  o: { secret: string; email: string; purpose: string; code: string; maxTries?: number; now?: number },
): Promise<CheckOutcome> {
  const k = await keys(prefix, o.email, o.purpose);
  const presented = await keyedHash(o.secret, o.email, o.purpose, o.code);
  const [reply] = await CHECK.run<[string, number]>(redis, [
    { keys: [k.record, k.tries], args: [presented, o.now ?? Date.now(), o.maxTries ?? MAX_TRIES] },
  ]);
  const [reason, left] = reply!;
  if (reason === "ok") return { ok: true };
  if (reason === "wrong") return { ok: false, reason, triesLeft: Number(left) };
  return { ok: false, reason: reason as "missing" | "expired" | "used" | "dead" };
}

const jwtPart = (o: object) => base64Url(enc.encode(JSON.stringify(o)));
const JWT_HEADER = jwtPart({ alg: "HS256", typ: "JWT" });

/**
 * The proof a correct code earns: an HS256 JWT with `sub` (the address, trimmed and lower-cased),
 * `purpose`, `iat`, `exp` and `iss: "celeriac"`, which any backend verifies with a JWT library and
 * the shared secret (the README documents it: the format is a contract). Compact JWS by hand,
 * the same bytes as a JWT library's: it only signs, and a JWT module would be 7 KiB of bundle.
 */
export async function signToken(secret: string, o: { email: string; purpose: string; ttl?: number; now?: number }): Promise<string> {
  const iat = Math.floor((o.now ?? Date.now()) / 1000);
  const claims = { sub: normalizeEmail(o.email), purpose: o.purpose, iat, exp: iat + (o.ttl ?? TOKEN_TTL_S), iss: "celeriac" };
  const signed = `${JWT_HEADER}.${jwtPart(claims)}`;
  return `${signed}.${base64Url(await hmac(secret, signed))}`;
}
