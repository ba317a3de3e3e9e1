// Checks Redis makes while running a command that ioredis-mock skips: WRONGTYPE, integer and
// float arguments and values, SET/ZADD option syntax. Without them the mock happily stores NaN
// or overwrites a hash with a string, and code that works here would fail on a real Redis.
import { COMMANDS, keyPositions } from "./commands.ts";

interface Data {
  get(key: string): unknown;
  has(key: string): boolean;
}
interface Expires {
  get(key: string): number | undefined;
  has(key: string): boolean;
}

const WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value";
const NOT_INT = "ERR value is not an integer or out of range";
const NOT_FLOAT = "ERR value is not a valid float";
const SYNTAX = "ERR syntax error";

const isInt = (s: unknown) => typeof s === "string" && /^(0|-?[1-9]\d{0,18})$/.test(s);
const isFloat = (s: unknown) =>
  typeof s === "string" && (/^[+-]?inf$/i.test(s) || (s.trim() === s && s !== "" && !Number.isNaN(Number(s))));

function typeOf(value: unknown): string {
  if (value === undefined) return "none";
  if (typeof value === "string" || value instanceof Uint8Array) return "string";
  if (Array.isArray(value)) return "list";
  if (value instanceof Set) return "set";
  if (value instanceof Map) return "sortedset";
  return "hash";
}

// Commands of a data type that overwrite or tolerate a key of another type.
const TYPE_EXEMPT = new Set(["set", "setex", "psetex", "setnx", "mset", "msetnx", "mget", "sort", "sort_ro", "bitop"]);
const INT_ARGS: Record<string, number[]> = {
  incrby: [1],
  decrby: [1],
  hincrby: [2],
  expire: [1],
  pexpire: [1],
  expireat: [1],
  pexpireat: [1],
  setex: [1],
  psetex: [1],
  lrange: [1, 2],
  lindex: [1],
  ltrim: [1, 2],
  lset: [1],
  lrem: [1],
  getrange: [1, 2],
  setrange: [1],
  zremrangebyrank: [1, 2],
  zrevrange: [1, 2],
};
const FLOAT_ARGS: Record<string, number[]> = { incrbyfloat: [1], hincrbyfloat: [2], zincrby: [1] };
const INT_VALUE = new Set(["incr", "decr", "incrby", "decrby"]);

/** Redis's error for running `name args` against the current data, or null. */
export function runtimeCheck(data: Data, name: string, args: readonly string[]): string | null {
  const spec = COMMANDS.get(name);
  if (!spec) return null;
  if (["string", "hash", "list", "set", "sortedset"].includes(spec.type) && !TYPE_EXEMPT.has(name)) {
    const positions = keyPositions(spec, args).slice(name.endsWith("store") ? 1 : 0);
    for (const i of positions) {
      const t = typeOf(data.get(args[i] ?? ""));
      if (t !== "none" && t !== spec.type) return WRONGTYPE;
    }
  }
  for (const i of INT_ARGS[name] ?? []) if (!isInt(args[i])) return NOT_INT;
  for (const i of FLOAT_ARGS[name] ?? []) if (!isFloat(args[i])) return NOT_FLOAT;
  const key = args[0] ?? "";
  if (INT_VALUE.has(name) && data.has(key) && !isInt(String(data.get(key)))) return NOT_INT;
  if (name === "incrbyfloat" && data.has(key) && !isFloat(String(data.get(key)))) return NOT_FLOAT;
  if (name === "hincrby" || name === "hincrbyfloat") {
    const field = (data.get(key) as Record<string, unknown> | undefined)?.[args[1] ?? ""];
    if (field !== undefined && name === "hincrby" && !isInt(String(field))) return "ERR hash value is not an integer";
    if (field !== undefined && name === "hincrbyfloat" && !isFloat(String(field))) return "ERR hash value is not a float";
  }
  if ((name === "setex" || name === "psetex") && Number(args[1]) <= 0) return `ERR invalid expire time in '${name}' command`;
  if ((name === "rename" || name === "renamenx") && !data.has(key)) return "ERR no such key";
  if (name === "set") return checkSet(args);
  if (name === "zadd") return checkZadd(args);
  return null;
}

function checkSet(args: readonly string[]): string | null {
  const seen = new Set<string>();
  for (let i = 2; i < args.length; i++) {
    const opt = args[i] ?? "";
    if (["EX", "PX", "EXAT", "PXAT"].includes(opt)) {
      const v = args[++i];
      if (v === undefined) return SYNTAX;
      if (!isInt(v)) return NOT_INT;
      if (Number(v) <= 0) return "ERR invalid expire time in 'set' command";
      if (seen.has("ttl") || seen.has("KEEPTTL")) return SYNTAX;
      seen.add("ttl");
    } else if (["NX", "XX", "GET", "KEEPTTL"].includes(opt)) {
      if ((opt === "NX" && seen.has("XX")) || (opt === "XX" && seen.has("NX"))) return SYNTAX;
      if (opt === "KEEPTTL" && seen.has("ttl")) return SYNTAX;
      seen.add(opt);
    } else return SYNTAX;
  }
  return null;
}

function checkZadd(args: readonly string[]): string | null {
  let i = 1;
  while (["NX", "XX", "GT", "LT", "CH", "INCR"].includes(args[i] ?? "")) i++;
  const pairs = args.slice(i);
  if (pairs.length === 0 || pairs.length % 2 !== 0) return SYNTAX;
  for (let j = 0; j < pairs.length; j += 2) if (!isFloat(pairs[j])) return NOT_FLOAT;
  return null;
}

// Option keywords the mock only recognises in upper case (the official client sends lower case),
// with how many values follow each.
const OPTIONS: Record<string, { from: number; words: Record<string, number> }> = {
  set: { from: 2, words: { NX: 0, XX: 0, GET: 0, KEEPTTL: 0, EX: 1, PX: 1, EXAT: 1, PXAT: 1 } },
  getex: { from: 1, words: { PERSIST: 0, EX: 1, PX: 1, EXAT: 1, PXAT: 1 } },
  zadd: { from: 1, words: { NX: 0, XX: 0, GT: 0, LT: 0, CH: 0, INCR: 0 } },
  expire: { from: 2, words: { NX: 0, XX: 0, GT: 0, LT: 0 } },
  pexpire: { from: 2, words: { NX: 0, XX: 0, GT: 0, LT: 0 } },
  expireat: { from: 2, words: { NX: 0, XX: 0, GT: 0, LT: 0 } },
  pexpireat: { from: 2, words: { NX: 0, XX: 0, GT: 0, LT: 0 } },
  zrange: { from: 3, words: { BYSCORE: 0, BYLEX: 0, REV: 0, WITHSCORES: 0, LIMIT: 2 } },
  zrangebyscore: { from: 3, words: { WITHSCORES: 0, LIMIT: 2 } },
  zrevrangebyscore: { from: 3, words: { WITHSCORES: 0, LIMIT: 2 } },
  zrevrange: { from: 3, words: { WITHSCORES: 0 } },
  scan: { from: 1, words: { MATCH: 1, COUNT: 1, TYPE: 1 } },
  hscan: { from: 2, words: { MATCH: 1, COUNT: 1, NOVALUES: 0 } },
  sscan: { from: 2, words: { MATCH: 1, COUNT: 1 } },
  zscan: { from: 2, words: { MATCH: 1, COUNT: 1 } },
  lmove: { from: 2, words: { LEFT: 0, RIGHT: 0 } },
  linsert: { from: 1, words: { BEFORE: 0, AFTER: 0 } },
};

/** Upper-cases option keywords (never their values) so the mock sees what it understands. */
export function normalizeOptions(name: string, args: string[]): string[] {
  const spec = OPTIONS[name];
  if (!spec) return args;
  const out = args.slice();
  for (let i = spec.from; i < out.length; i++) {
    const word = (out[i] ?? "").toUpperCase();
    const takes = spec.words[word];
    if (takes === undefined) {
      if (name === "zadd") break; // score/member pairs start here
      continue;
    }
    out[i] = word;
    i += takes;
  }
  return out;
}

const EXPIRE_MS: Record<string, (n: number) => number> = {
  expire: (n) => Date.now() + n * 1000,
  pexpire: (n) => Date.now() + n,
  expireat: (n) => n * 1000,
  pexpireat: (n) => n,
};

/**
 * Semantics the mock ignores, emulated with commands it has: EXPIRE's NX/XX/GT/LT conditions
 * and ZADD … INCR; GET and HGET are answered here because the mock's Lua bridge turns an empty
 * string into nil. Returns the command to run instead, or the reply outright.
 */
export function rewrite(
  data: Data,
  expires: Expires,
  name: string,
  args: string[],
): { name: string; args: string[] } | { reply: number | string | Uint8Array | null } {
  const key = args[0] ?? "";
  if (name === "get" || name === "hget") {
    const value = data.get(key);
    const found = name === "get" ? value : (value as Record<string, unknown> | undefined)?.[args[1] ?? ""];
    if (typeof found === "number") return { reply: String(found) };
    return { reply: typeof found === "string" || found instanceof Uint8Array ? found : null };
  }
  const at = EXPIRE_MS[name];
  if (at && args.length > 2) {
    if (!data.has(key)) return { reply: 0 };
    const cur = expires.has(key) ? (expires.get(key) ?? Infinity) : Infinity;
    const next = at(Number(args[1]));
    const flags = new Set(args.slice(2));
    const ok =
      (!flags.has("NX") || cur === Infinity) &&
      (!flags.has("XX") || cur !== Infinity) &&
      (!flags.has("GT") || (cur !== Infinity && next > cur)) &&
      (!flags.has("LT") || cur === Infinity || next < cur);
    return ok ? { name, args: args.slice(0, 2) } : { reply: 0 };
  }
  if (name === "zadd" && args.includes("INCR")) {
    const flags = new Set(args.slice(1, -2));
    const [incr = "", member = ""] = args.slice(-2);
    const zset = data.get(key);
    const exists = zset instanceof Map && zset.has(member);
    if ((flags.has("NX") && exists) || (flags.has("XX") && !exists)) return { reply: null };
    return { name: "zincrby", args: [key, incr, member] };
  }
  return { name, args };
}
