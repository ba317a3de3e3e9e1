// Seeded fuzzing of every route that takes input: the API-key routes, the browsers' public routes
// (a public task, the verification check, receipts), dead letters and suppressions, Resend's
// events (signed, forged, stale), the delivery routes with
// valid signatures over hostile bodies (and some without). The app runs in-process against its
// own QStash-compatible broker and its own bridge to Redis (the real one when it answers), under
// a key prefix of its own (CELERIAC_REDIS_PREFIX), and every request is checked: no 5xx from
// celeriac itself, and a refused request changes nothing under that prefix. FUZZ_SEED and
// FUZZ_CASES override the defaults; a failure names the seed, the case and what changed.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { type Broker, startBroker } from "../dev/broker/index.ts";
import type { Backend } from "../dev/redis-bridge/backend.ts";
import { createHandler } from "../dev/redis-bridge/http.ts";
import { createMemoryBackend } from "../dev/redis-bridge/memory.ts";
import { connectRealRedis } from "../dev/redis-bridge/real.ts";
import { DEV_API_KEY, freePort, stackEnv } from "../dev/stack.ts";
import { createApp } from "../src/app.ts";
import { newTaskId } from "../src/ids.ts";
import { sign, stack } from "./helpers/api.ts";

const SEED = Number(process.env.FUZZ_SEED ?? 20261129);
const CASES = Number(process.env.FUZZ_CASES ?? 1500);
const TOKEN = "fuzz-redis-token";
const PREFIX = `celeriac-fuzz-${Math.random().toString(36).slice(2, 8)}:`;
/** Nothing listens here: the app's public URL, Resend and webhook targets (allow-listed) fail at once. */
const DEAD = `http://127.0.0.1:${await freePort()}`;

/** mulberry32: a small, fast, seeded PRNG. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  return { next, int, pick, chance: (p: number) => next() < p };
}
type Rng = ReturnType<typeof prng>;

const STRINGS = [
  "",
  " ",
  "a",
  "x".repeat(300),
  "x".repeat(5_000),
  "\u0000",
  "\uFEFF",
  "\uD800",
  "💥",
  "crème brûlée",
  "<script>",
  "../../etc/passwd",
  "%00",
  "null",
  "true",
  "1e309",
  "-0",
  "NaN",
  "0x10",
  "__proto__",
  "constructor",
  "tsk_",
  newTaskId(),
  "ada@celeriac.dev",
  "Name <ada@celeriac.dev>",
  "a@b",
  "http://127.0.0.1/",
  "https://example.com/hook",
  "http://[::1]/",
  "http://localhost../x",
  "file:///etc/passwd",
  "javascript:alert(1)",
  "1h30m",
  "90s",
  "-5s",
  "2026-11-29T12:00:00Z",
];
const NUMBERS = [0, -1, 1, 1.5, 2 ** 31, 2 ** 53 + 1, -(2 ** 53), 1e308, Number.MIN_VALUE, 365 * 86_400 + 1, 7_201];

function value(r: Rng, depth = 0): unknown {
  switch (r.int(depth > 3 ? 4 : 7)) {
    case 0:
      return r.pick(STRINGS);
    case 1:
      return r.pick(NUMBERS);
    case 2:
      return r.pick([true, false, null]);
    case 3:
      return r.chance(0.5) ? r.pick(STRINGS) : r.int(1000);
    case 4:
      return Array.from({ length: r.int(4) }, () => value(r, depth + 1));
    case 5:
      return Object.fromEntries(
        Array.from({ length: r.int(4) }, () => [
          r.pick(["to", "subject", "text", "url", "body", "json", "__proto__", "constructor", r.pick(STRINGS)]),
          value(r, depth + 1),
        ]),
      );
    default:
      return nested(r.int(200));
  }
}
const nested = (n: number): unknown => JSON.parse(`${"[".repeat(n)}1${"]".repeat(n)}`);

/** Mostly valid payloads with one hostile change, so the fuzz gets past the first check. */
function payload(r: Rng, task: string): unknown {
  const base: Record<string, unknown> =
    task === "webhook"
      ? { url: `${DEAD}/hook`, method: "POST", body: { json: { a: 1 } } }
      : task === "daily-stats"
        ? { date: "2026-11-28" }
        : { to: "ada@celeriac.dev", subject: "fuzz", text: "hi" };
  if (r.chance(0.25)) return base;
  if (r.chance(0.2)) return value(r);
  const key = r.pick([...Object.keys(base), "extra", "headers", "html", "cc", "tags"]);
  return { ...base, [key]: value(r) };
}

function options(r: Rng): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (const k of ["delay", "notBefore", "retries", "timeout", "idempotencyKey", "bogus"]) {
    if (r.chance(0.15)) o[k] = r.chance(0.5) ? value(r) : r.pick(k === "delay" ? ["1h", "10s", 3600, "9999d"] : NUMBERS);
  }
  if (r.chance(0.15)) {
    o.callback = r.pick([
      `${DEAD}/cb`,
      "https://example.com/cb",
      "http://10.0.0.1/cb",
      "ftp://example.com/cb",
      { url: `${DEAD}/cb`, events: ["task.failed"] },
      { url: `${DEAD}/cb`, events: [r.pick(STRINGS)] },
      { url: value(r) },
      value(r),
    ]);
  }
  // Accepted tasks wait an hour, so the fuzz broker never delivers them during the run.
  if (o.delay === undefined && o.notBefore === undefined) o.delay = "1h";
  return o;
}

/** The body as sent: usually JSON, sometimes not JSON at all. */
function encode(r: Rng, body: unknown): { text: string; type: string } {
  const text = JSON.stringify(body) ?? "null";
  switch (r.int(12)) {
    case 0:
      return { text: text.slice(0, Math.max(0, text.length - 1 - r.int(3))), type: "application/json" };
    case 1:
      return { text: `\uFEFF${text}`, type: "application/json" };
    case 2:
      return { text, type: r.pick(["text/plain", "application/x-www-form-urlencoded", "", "application/jsonx"]) };
    case 3:
      return { text: "[".repeat(5_000) + "]".repeat(5_000), type: "application/json" };
    default:
      return { text, type: "application/json" };
  }
}

const TASKS = ["send-email", "webhook", "daily-stats"] as const;
/** A path segment; a lone surrogate cannot be URI-encoded, so it goes as the bytes it would be. */
const segment = (x: string) => {
  try {
    return encodeURIComponent(x);
  } catch {
    return "%ED%A0%80";
  }
};

interface Case {
  method: string;
  path: string;
  body?: string;
  headers: Record<string, string>;
  /** A delivery route: 5xx answers that carry the runner's outcome are QStash protocol, not errors. */
  delivery?: boolean;
  /** Signed correctly (a delivery) or with the right API key: it should get past that check. */
  authentic?: boolean;
}

/** Dead letters and suppressions: lists, replays (one, by filter, dry), discards, removals. */
function deadCase(r: Rng, known: string[], headers: Record<string, string>): Case {
  const id = () => (r.chance(0.6) && known.length ? r.pick(known) : r.pick([newTaskId(), "tsk_", "x", segment(r.pick(STRINGS)) || "e"]));
  switch (r.int(6)) {
    case 0: {
      const q = new URLSearchParams();
      for (const k of ["task", "code", "since", "cursor", "limit", "x"])
        if (r.chance(0.4))
          q.set(
            k,
            String(
              r.chance(0.5)
                ? r.pick(STRINGS)
                : r.pick([
                    "webhook",
                    "http_410",
                    "0",
                    "1764000000",
                    "2026-11-29T00:00:00Z",
                    "101",
                    btoa("1|tsk_a"),
                    btoa(`9e99|${newTaskId()}`),
                  ]),
            ),
          );
      return { method: "GET", path: `/v1/dead?${q}`, headers };
    }
    case 1:
      return { method: "POST", path: `/v1/dead/${id()}/replay`, headers };
    case 2: {
      const filter = r.chance(0.7)
        ? {
            ...(r.chance(0.5) ? { task: r.pick(["webhook", "send-email", r.pick(STRINGS)]) } : {}),
            ...(r.chance(0.5) ? { code: r.pick(["http_410", r.pick(STRINGS)]) } : {}),
            ...(r.chance(0.3) ? { since: value(r) } : {}),
          }
        : value(r);
      const { text, type } = encode(r, r.chance(0.8) ? { filter, dryRun: r.chance(0.5) ? r.chance(0.5) : value(r) } : value(r));
      return { method: "POST", path: "/v1/dead/replay", body: text, headers: { ...headers, "content-type": type } };
    }
    case 3:
      return { method: "DELETE", path: `/v1/dead/${id()}`, headers };
    case 4:
      return {
        method: "GET",
        path: `/v1/suppressions?${new URLSearchParams(r.chance(0.5) ? { cursor: r.pick(["0", "x", "99", ...STRINGS]), limit: r.pick(["1", "0", "500", "x"]) } : {})}`,
        headers,
      };
    default:
      return {
        method: r.pick(["GET", "DELETE"]),
        path: `/v1/suppressions/${segment(r.pick(["ada@celeriac.dev", "bounced@resend.dev", ...STRINGS])) || "x"}`,
        headers,
      };
  }
}

/** Resend's events: mostly signed with the configured secret, over hostile bodies; some forged or stale. */
function resendCase(r: Rng, known: string[], env: Record<string, string>): Case {
  const type = r.pick([
    "email.sent",
    "email.delivered",
    "email.bounced",
    "email.complained",
    "email.delivery_delayed",
    "email.opened",
    "contact.created",
    r.pick(STRINGS),
  ]);
  const tag = r.chance(0.6) && known.length ? r.pick(known) : r.pick([newTaskId(), r.pick(STRINGS)]);
  const event: Record<string, unknown> = {
    type,
    created_at: r.chance(0.8) ? new Date().toISOString() : value(r),
    data: {
      email_id: `e-${r.int(1e6)}`,
      to: [r.pick(["ada@celeriac.dev", "bounced@resend.dev", r.pick(STRINGS)])],
      tags: { celeriac_task: tag },
      ...(r.chance(0.3) ? { bounce: { type: r.pick(["Permanent", "Transient", value(r)]) } } : {}),
    },
  };
  if (r.chance(0.3)) event[r.pick(["type", "data", "created_at"])] = value(r);
  const body = r.chance(0.1) ? r.pick(["", "{", "[]", "null", "\uFEFF{}"]) : (JSON.stringify(r.chance(0.1) ? value(r) : event) ?? "null");
  const svixId = r.chance(0.2) ? "msg_fuzz_repeat" : `msg_${r.int(1e9)}`;
  const at = new Date(Date.now() - (r.chance(0.1) ? 3_600_000 : 0));
  const secret = r.chance(0.85) ? env.RESEND_WEBHOOK_SECRET! : `whsec_${Buffer.from("not the secret").toString("base64")}`;
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (r.chance(0.95)) headers["svix-id"] = svixId;
  if (r.chance(0.95))
    headers["svix-timestamp"] = r.chance(0.95) ? String(Math.floor(at.getTime() / 1000)) : r.pick(STRINGS).replace(/[^\x20-\x7e]/g, "_");
  if (r.chance(0.95)) headers["svix-signature"] = new Webhook(secret).sign(svixId, at, body);
  return { method: "POST", path: "/webhooks/resend", body, headers };
}

function apiCase(r: Rng, known: string[]): Case {
  const auth = r.chance(0.95) ? `Bearer ${DEV_API_KEY}` : r.pick(["", "Bearer", "Bearer wrong-key-0123456789", `bearer ${DEV_API_KEY} x`]);
  const headers: Record<string, string> = { authorization: auth };
  const authentic = auth === `Bearer ${DEV_API_KEY}`;
  const id = () =>
    r.chance(0.5) && known.length
      ? r.pick(known)
      : r.pick([newTaskId(), "tsk_", "x", "%2e%2e", `tsk_${"z".repeat(26)}`, segment(r.pick(STRINGS)) || "e"]);
  switch (r.int(11)) {
    case 9:
    case 10:
      return deadCase(r, known, headers);
    case 0:
    case 1:
    case 2: {
      const task = r.chance(0.9) ? r.pick(TASKS) : segment(r.pick(STRINGS)) || "x";
      const { text, type } = encode(r, { ...options(r), payload: payload(r, task) });
      if (r.chance(0.1)) headers["idempotency-key"] = r.pick(["k1", "", "x".repeat(300), `k-${r.int(5)}`]);
      return { method: "POST", path: `/v1/tasks/${task}`, body: text, headers: { ...headers, "content-type": type }, authentic };
    }
    case 3: {
      const tasks = Array.from({ length: r.int(4) }, () =>
        r.chance(0.8) ? { task: r.pick(TASKS), ...options(r), payload: payload(r, "send-email") } : value(r),
      );
      const { text, type } = encode(r, r.chance(0.9) ? { tasks } : value(r));
      return { method: "POST", path: "/v1/tasks", body: text, headers: { ...headers, "content-type": type }, authentic };
    }
    case 4: {
      const q = new URLSearchParams();
      for (const k of ["state", "task", "cursor", "limit", "x"])
        if (r.chance(0.4))
          q.set(
            k,
            String(
              r.chance(0.5)
                ? r.pick(STRINGS)
                : r.pick(["queued", "scheduled", "send-email", "10", "0", "101", "abc", btoa("1|x"), btoa("9e99|tsk_a")]),
            ),
          );
      return { method: "GET", path: `/v1/tasks?${q}`, headers, authentic };
    }
    case 5:
      return { method: r.pick(["GET", "DELETE"]), path: `/v1/tasks/${id()}`, headers, authentic };
    case 6:
      return { method: "POST", path: `/v1/tasks/${id()}/retry`, headers, authentic };
    case 7:
      return {
        method: r.pick(["GET", "POST"]),
        path: r
          .pick([
            "/v1/schedules",
            `/v1/schedules/celeriac-${r.pick(STRINGS) || "x"}/pause`,
            "/v1/schedules/x/resume",
            "/v1/schedules/celeriac-daily-stats-daily/resume",
          ])
          .replace(/[^\x21-\x7e]/g, "_"),
        headers,
        authentic,
      };
    default:
      return {
        method: "GET",
        path: r.pick(["/v1/stats", `/v1/stats/daily/${r.pick(["2026-11-28", "2026-13-45", "0000-00-00", "x"])}`]),
        headers,
        authentic,
      };
  }
}

/** A browser's call: the public task, the verification check, receipts; from allowed origins or not. */
function publicCase(r: Rng): Case {
  const origin = r.pick([env.CELERIAC_PUBLIC_ORIGINS?.split(",")[0] ?? "https://shop.example", "https://evil.example", "null", ""]);
  const headers: Record<string, string> = origin ? { origin } : {};
  if (r.chance(0.5))
    headers["cf-turnstile-response"] = r
      .pick(["XXXX.DUMMY.TOKEN.XXXX", "", "x".repeat(3_000), r.pick(STRINGS)])
      .replace(/[^\x20-\x7e]/g, "_");
  switch (r.int(5)) {
    case 0:
    case 1: {
      const body = r.chance(0.7)
        ? { email: r.pick(["ada@celeriac.dev", "a@b", r.pick(STRINGS)]), purpose: r.pick(["sign-in", "Sign In", "", r.pick(STRINGS)]) }
        : value(r);
      const { text, type } = encode(r, body);
      return {
        method: r.pick(["POST", "POST", "OPTIONS"]),
        path: "/v1/public/verification",
        body: text,
        headers: { ...headers, "content-type": type },
      };
    }
    case 2: {
      const { text, type } = encode(
        r,
        r.chance(0.7)
          ? { email: "ada@celeriac.dev", purpose: "sign-in", code: r.pick(["123456", "", "1234567", r.pick(STRINGS)]) }
          : value(r),
      );
      return {
        method: "POST",
        path: r.pick(["/v1/public/verification/check", "/v1/verification/check"]),
        body: text,
        headers: { ...headers, "content-type": type, authorization: `Bearer ${DEV_API_KEY}` },
      };
    }
    case 3:
      return {
        method: r.pick(["GET", "OPTIONS"]),
        path: `/v1/public/receipts/${segment(r.pick([...STRINGS, `rcpt_${"a".repeat(40)}`])) || "x"}`,
        headers,
      };
    default: {
      const { text, type } = encode(r, value(r));
      return {
        method: "POST",
        path: `/v1/public/${r.pick(["send-email", "webhook", "nope", segment(r.pick(STRINGS)) || "x"])}`,
        body: text,
        headers: { ...headers, "content-type": type },
      };
    }
  }
}

/** A signed delivery (mostly) over a hostile body: task messages, scheduled runs, failure callbacks. */
function deliveryCase(r: Rng, known: string[], env: Record<string, string>): Case {
  const failure = r.chance(0.3);
  const path = failure ? "/qstash/failure" : "/qstash/deliver";
  const message = (): unknown => {
    if (r.chance(0.15)) return value(r);
    const task = r.chance(0.9) ? r.pick(TASKS) : r.pick(STRINGS);
    if (r.chance(0.2))
      return {
        v: 1,
        schedule: r.pick(["celeriac-daily-stats-daily", r.pick(STRINGS)]),
        task,
        payload: payload(r, task),
        options: { retries: r.pick([0, 1, -1, 1.5]), timeout: r.pick([1, 30, 0]), resultTtl: r.pick([3600, 3600, -5, 1.5]) },
      };
    const m: Record<string, unknown> = {
      v: 1,
      id: r.chance(0.8) ? (r.chance(0.3) && known.length ? r.pick(known) : newTaskId()) : r.pick(STRINGS),
      task,
      payload: payload(r, task),
      options: { retries: 0, timeout: 5, resultTtl: 3600 },
      createdAt: Date.now(),
      runAt: Date.now(),
    };
    if (r.chance(0.3)) m[r.pick(["options", "createdAt", "runAt", "gen", "v", "idempotencyKey"])] = value(r);
    return m;
  };
  let body: string;
  if (failure) {
    const source = JSON.stringify(message());
    const cb: Record<string, unknown> = {
      status: 500,
      retried: 0,
      sourceMessageId: "msg_fuzz",
      sourceBody: Buffer.from(source).toString("base64"),
    };
    if (r.chance(0.3)) cb[r.pick(["status", "retried", "sourceBody", "sourceMessageId", "dlqId"])] = value(r);
    body = r.chance(0.1) ? (JSON.stringify(value(r)) ?? "null") : JSON.stringify(cb);
  } else {
    body = r.chance(0.1) ? r.pick(["", "{", "\uFEFF{}", "[]", "null"]) : (JSON.stringify(message()) ?? "null");
  }
  const url = `${env.CELERIAC_PUBLIC_URL}${path}`;
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "upstash-message-id": `msg_${r.int(1e9)}`,
    "upstash-retried": String(r.pick([0, 1, -1, "x"])),
  };
  const signed = r.int(10);
  if (signed < 8) headers["upstash-signature"] = sign({ key: env.QSTASH_CURRENT_SIGNING_KEY!, url, body });
  else if (signed === 8) headers["upstash-signature"] = sign({ key: env.QSTASH_CURRENT_SIGNING_KEY!, url, body: `${body} ` });
  return { method: "POST", path, body, headers, delivery: true, authentic: signed < 8 };
}

// --- the fuzz's own Redis, whose every command is counted ---------------------------------------

let broker: Broker;
let server: http.Server;
let memory: Backend;
let commands = 0;
let env: Record<string, string>;
const app = createApp();

/** A reply as plain JSON (status replies such as TYPE's are objects with `text`). */
const plain = (x: unknown): unknown => {
  const v = (x as { value?: unknown }).value;
  return v && typeof v === "object" && "text" in v ? (v as { text: string }).text : v;
};

/**
 * One round trip: a digest of every key under the prefix (type, value, whether it expires),
 * leaving out keys about to expire, computed inside Redis. The embedded Redis, which lacks
 * redis.sha1hex, gets the full listing instead.
 */
const DIGEST = `
local all, keys = redis.call('KEYS', ARGV[1]), {}
-- Rate-limit counters are left out: a refused guess must count, or guessing would be free.
for _, k in ipairs(all) do if not string.find(k, ':rl:', 1, true) then keys[#keys + 1] = k end end
table.sort(keys)
local parts = {}
for _, k in ipairs(keys) do
  local t = redis.call('TYPE', k).ok
  local ttl = redis.call('PTTL', k)
  if not (ttl >= 0 and ttl < 5000) then
    local v
    if t == 'hash' then
      -- Field order is not stable (a rehash may reorder on a mere read): sort the pairs.
      local flat, pairs_ = redis.call('HGETALL', k), {}
      for i = 1, #flat, 2 do pairs_[#pairs_ + 1] = flat[i] .. '=' .. flat[i + 1] end
      table.sort(pairs_)
      v = pairs_
    elseif t == 'list' then v = redis.call('LRANGE', k, 0, -1)
    elseif t == 'zset' then v = redis.call('ZRANGE', k, 0, -1, 'WITHSCORES')
    elseif t == 'set' then v = redis.call('SMEMBERS', k) table.sort(v)
    else v = { redis.call('GET', k) } end
    parts[#parts + 1] = k .. '\\n' .. t .. '\\n' .. (ttl > 0 and '1' or '0') .. '\\n' .. table.concat(v, '\\t')
  end
end
return redis.sha1hex(table.concat(parts, '\\n\\n'))`;
let snapshotMs = 0;
/**
 * Every key under the prefix with its type, value and whether it expires (or their digest):
 * what "nothing changed" compares. Keys within seconds of expiring are left out.
 */
async function snapshot(): Promise<string> {
  const t0 = performance.now();
  if (memory.kind === "redis" && !process.env.FUZZ_DEBUG) {
    const [d] = await memory.pipeline([["eval", DIGEST, "0", `${PREFIX}*`]]);
    snapshotMs += performance.now() - t0;
    return String(plain(d));
  }
  // Rate-limit counters are left out: a refused guess must count, or guessing would be free.
  const names = (plain((await memory.pipeline([["keys", `${PREFIX}*`]]))[0]) as string[]).filter((k) => !String(k).includes(":rl:")).sort();
  const read = (k: string, type: string): string[] =>
    type === "hash"
      ? ["hgetall", k]
      : type === "list"
        ? ["lrange", k, "0", "-1"]
        : type === "zset"
          ? ["zrange", k, "0", "-1", "withscores"]
          : type === "set"
            ? ["smembers", k]
            : ["get", k];
  const types = (await memory.pipeline(names.map((k) => ["type", k]))).map((t) => String(plain(t)));
  const values = await memory.pipeline(names.map((k, i) => read(k, types[i]!)));
  const ttls = (await memory.pipeline(names.map((k) => ["pttl", k]))).map((t) => Number(plain(t)));
  snapshotMs += performance.now() - t0;
  // An empty hash or list is no key at all in Redis (the embedded one may keep it a while).
  const kept = (i: number) =>
    !(ttls[i]! >= 0 && ttls[i]! < 5_000) && !(Array.isArray(plain(values[i]!)) && (plain(values[i]!) as unknown[]).length === 0);
  const text = (x: unknown): unknown => (Array.isArray(x) ? x.map(text) : x instanceof Uint8Array ? Buffer.from(x).toString("utf8") : x);
  const value = (i: number) => {
    const v = text(plain(values[i]!));
    if (types[i] !== "hash" || !Array.isArray(v)) return v;
    const pairs: string[] = [];
    for (let j = 0; j + 1 < v.length; j += 2) pairs.push(`${v[j]}=${v[j + 1]}`);
    return pairs.sort();
  };
  return JSON.stringify(names.flatMap((k, i) => (kept(i) ? [[text(k), types[i], value(i), ttls[i]! > 0]] : [])));
}

/** The entries of two snapshots that differ. */
function diff(a: string, b: string): string {
  const [x, y] = [JSON.parse(a) as unknown[][], JSON.parse(b) as unknown[][]];
  const key = (e: unknown[]) => JSON.stringify(e);
  const xs = new Set(x.map(key));
  const ys = new Set(y.map(key));
  return `gone ${x
    .map(key)
    .filter((e) => !ys.has(e))
    .join(" ")
    .slice(0, 600)}; new ${y
    .map(key)
    .filter((e) => !xs.has(e))
    .join(" ")
    .slice(0, 600)}`;
}

/** Whether some key expires within a minute (then snapshots are retaken before each request). */
async function shortLived(): Promise<boolean> {
  const names = plain((await memory.pipeline([["keys", `${PREFIX}*`]]))[0]) as string[];
  const ttls = await memory.pipeline(names.map((k) => ["pttl", k]));
  return ttls.some((t) => Number(plain(t)) >= 0 && Number(plain(t)) < 60_000);
}

beforeAll(async () => {
  const backend = await connectRealRedis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379").catch(() => createMemoryBackend());
  // Counts commands, so a snapshot is taken only around requests that reached Redis at all.
  memory = {
    kind: backend.kind,
    pipeline: (cmds) => ((commands += cmds.length), backend.pipeline(cmds)),
    transaction: (cmds) => ((commands += cmds.length), backend.transaction(cmds)),
    close: () => backend.close(),
  };
  const handler = createHandler(memory, TOKEN);
  server = http.createServer((req, res) => void handler(req, res));
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  broker = await startBroker({ port: 0, timeScale: 1, log: false });
  const bridge = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    token: TOKEN,
    backend: "memory" as const,
    close: async () => {},
  };
  // The public routes' settings (origins, the Turnstile stand-in, secrets) are the test stack's.
  const shared = Object.fromEntries(
    Object.entries(stack().env).filter(([k]) => /^(CELERIAC_PUBLIC_ORIGINS|CELERIAC_RECEIPT_SECRET|TURNSTILE_|VERIFICATION_)/.test(k)),
  );
  env = stackEnv({ bridge, sink: { url: DEAD } as never, broker }, DEAD, {
    ...shared,
    CELERIAC_WEBHOOK_ALLOW_HOSTS: "127.0.0.1",
    CELERIAC_REDIS_PREFIX: PREFIX,
  });
});
afterAll(async () => {
  const left = plain((await memory.pipeline([["keys", `${PREFIX}*`]]))[0]) as string[];
  if (left.length) await memory.pipeline([["del", ...left]]);
  await broker?.close();
  await new Promise<void>((ok) => (server ? server.close(() => ok()) : ok()));
  await memory?.close();
});

describe("fuzz", () => {
  it(`${CASES} seeded cases over every input route: no 5xx from celeriac, and a refused request changes nothing`, async () => {
    const r = prng(SEED);
    const known: string[] = [];
    const statuses = new Map<number, number>();
    // How many authentic requests got past authentication, and deliveries to the runner: the
    // fuzz proves nothing about code that its cases never reach.
    const reach = { authentic: 0, pastAuth: 0, deliveries: 0, ran: 0 };
    const started = performance.now();
    let requestMs = 0;
    onTestFinished(() =>
      console.log(
        `[celeriac] fuzz: ${Math.round(performance.now() - started)} ms, ${Math.round(requestMs)} in requests, ${Math.round(snapshotMs)} comparing Redis`,
      ),
    );
    let before = await snapshot();
    let expiring = false;
    for (let n = 0; n < CASES; n++) {
      const x = r.next();
      const c = x < 0.3 ? deliveryCase(r, known, env) : x < 0.45 ? publicCase(r) : x < 0.52 ? resendCase(r, known, env) : apiCase(r, known);
      if (expiring) before = await snapshot(); // keys may have expired since
      const at = commands;
      const t1 = performance.now();
      const res = await Promise.resolve(
        app.request(
          c.path,
          { method: c.method, headers: c.headers, ...(c.body !== undefined && c.method !== "GET" ? { body: c.body } : {}) },
          env,
        ),
      ).catch((err: unknown) => {
        throw new Error(
          `seed ${SEED} case ${n}: ${c.method} ${c.path} ${(c.body ?? "").slice(0, 500)} threw ${String(err)}; polluted: ${Object.keys(Object.prototype)}`,
        );
      });
      const text = await res.text();
      requestMs += performance.now() - t1;
      const where = `seed ${SEED} case ${n}: ${c.method} ${c.path} ${(c.body ?? "").slice(0, 300)} → ${res.status} ${text.slice(0, 300)}`;
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      // A "__proto__" key must never reach Object.prototype (it would reach every later request).
      expect(Object.keys(Object.prototype), `Object.prototype polluted: ${where}`).toEqual([]);
      let json: any;
      try {
        // A CORS preflight answers 204 with no body; everything else answers JSON.
        json = res.status === 204 && text === "" ? {} : JSON.parse(text);
      } catch {
        throw new Error(`not JSON: ${where}`);
      }
      if (res.status >= 500) {
        // The runner's answers to QStash (retry later, or a retryable failure) are protocol.
        const outcome = c.delivery && json && typeof json.id === "string" && (json.busy === true || json.state !== undefined);
        expect(outcome, where).toBe(true);
      }
      const refused =
        (res.status >= 400 && !(c.delivery && res.status >= 489)) ||
        json?.error?.code === "invalid_callback" ||
        json?.error?.code === "invalid_message";
      if (commands !== at) {
        const after = await snapshot();
        if (refused && after !== before)
          expect.fail(
            `a refused request changed Redis: ${where}: ${before.startsWith("[") ? diff(before, after) : "digest differs (FUZZ_DEBUG=1 lists the keys)"}`,
          );
        before = after;
        expiring = await shortLived();
      }
      if (c.authentic) {
        reach.authentic++;
        if (res.status !== 401) reach.pastAuth++;
      }
      if (c.delivery && c.authentic && c.path === "/qstash/deliver") {
        reach.deliveries++;
        if (json && typeof json.id === "string" && (json.state !== undefined || json.skipped !== undefined || json.busy === true))
          reach.ran++;
      }
      if (!refused && typeof json?.id === "string" && /^tsk_/.test(json.id)) known.push(json.id);
      if (!refused && Array.isArray(json?.tasks)) for (const t of json.tasks) if (typeof t.id === "string") known.push(t.id);
    }
    // The mix reached past validation: some accepted, many refused for many reasons.
    expect(statuses.get(202) ?? 0).toBeGreaterThan(CASES / 100);
    expect([...statuses.keys()].filter((s) => s >= 400).length).toBeGreaterThan(5);
    console.log(`[celeriac] fuzz reach: ${JSON.stringify(reach)}`);
    expect(reach.pastAuth, "authentic requests refused as unauthenticated").toBe(reach.authentic);
    expect(reach.ran, "signed deliveries that reached the runner").toBeGreaterThan(reach.deliveries / 4);
    console.log(
      `[celeriac] fuzz seed ${SEED}: ${CASES} cases (${Math.round(snapshotMs)} ms comparing Redis), statuses ${JSON.stringify(Object.fromEntries([...statuses].sort()))}`,
    );
  }, 120_000);
});
