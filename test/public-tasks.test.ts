// Public tasks as browsers call them: CORS, bad input, rate limits, receipts and the Turnstile
// check, through an app served by the Node entry with test-only public tasks, against the shared
// Redis bridge, broker and Turnstile stand-in. Every refusal is checked to have enqueued nothing.
import * as v from "valibot";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../dev/stack.ts";
import { TURNSTILE_DUMMY_TOKEN, TURNSTILE_TEST_SECRETS } from "../dev/turnstile.ts";
import { serveNode } from "../src/node.ts";
import { defineTask, OPEN_RELAY_ACK, type TaskDefinition } from "../src/task.ts";
import { tasks as builtIn } from "../tasks/index.ts";
import { call, keyPrefix, stack, until } from "./helpers/api.ts";

const tag = Math.random().toString(36).slice(2, 8);
const SHOP = "https://shop.example";
const input = v.strictObject({ email: v.pipe(v.string(), v.trim(), v.email()), lang: v.picklist(["en", "fr"]) });
const pub = (name: string, extra: Partial<Parameters<typeof defineTask>[0]["public"]> = {}, resultTtl?: number) =>
  defineTask({
    name: `${name}-${tag}`,
    input,
    ...(resultTtl ? { resultTtl } : {}),
    public: { recipient: "email", origins: [SHOP], ...extra },
    async run({ lang }) {
      return { lang };
    },
  });
const greet = pub("greet", {
  limits: { ip: { requests: 100, window: 60 }, recipient: { requests: 100, window: 60 }, task: { requests: 100, window: 60 } },
});
const byIp = pub("by-ip", { limits: { ip: { requests: 2, window: 60 }, recipient: false, task: false } });
const byRecipient = pub("by-recipient", { limits: { ip: false, recipient: { requests: 2, window: 60 }, task: false } });
const byTask = pub("by-task", { limits: { ip: false, recipient: false, task: { requests: 3, window: 60 } } });
const botChecked = pub("bot-checked", { turnstile: true, limits: { ip: false, recipient: false } });
const shortLived = pub("short-lived", { limits: { ip: false } }, 1);
const byIp6 = pub("by-ip6", { limits: { ip: { requests: 2, window: 60 }, recipient: false, task: false } });
const byInbox = pub("by-inbox", { limits: { ip: false, recipient: { requests: 2, window: 60 }, task: false } });
const byAll = pub("by-all", {
  limits: { ip: { requests: 2, window: 60 }, recipient: { requests: 3, window: 60 }, task: { requests: 4, window: 60 } },
});
const atomic = pub("atomic", {
  limits: { ip: { requests: 3, window: 60 }, recipient: { requests: 1, window: 60 }, task: { requests: 10, window: 60 } },
});
const noRedis = pub("no-redis");
const botLimited = pub("bot-limited", {
  turnstile: true,
  limits: { ip: false, recipient: { requests: 1, window: 60 }, task: { requests: 3, window: 60 } },
});
const tasks = [
  ...builtIn,
  greet,
  byIp,
  byRecipient,
  byTask,
  botChecked,
  shortLived,
  botLimited,
  byIp6,
  byInbox,
  byAll,
  atomic,
  noRedis,
] as TaskDefinition[];

let app: { url: string; close: () => Promise<void> };
// The configuration is parsed once per env object: a test that changes a variable swaps the object.
let env: Record<string, string> = {};

beforeAll(async () => {
  env = { ...stack().env, CELERIAC_TRUSTED_IP_HEADER: "x-forwarded-for", TURNSTILE_SECRET_KEY: TURNSTILE_TEST_SECRETS.pass };
  app = await serveNode({ port: 0, tasks, env: () => env });
  env.CELERIAC_PUBLIC_URL = app.url;
});
afterAll(() => app?.close());

/** A browser-like call: no API key, an Origin, a client address. */
async function browser(
  method: string,
  path: string,
  o: { origin?: string; ip?: string; body?: unknown; raw?: string; type?: string; headers?: Record<string, string> } = {},
) {
  const headers: Record<string, string> = { ...o.headers };
  if (o.origin !== undefined) headers.origin = o.origin;
  headers["x-forwarded-for"] = `203.0.113.7, ${o.ip ?? "198.51.100.1"}`;
  if (o.body !== undefined || o.raw !== undefined) headers["content-type"] = o.type ?? "application/json";
  const r = await fetch(app.url + path, {
    method,
    headers,
    ...(o.raw !== undefined ? { body: o.raw } : o.body !== undefined ? { body: JSON.stringify(o.body) } : {}),
  });
  const text = await r.text();
  return { status: r.status, headers: r.headers, body: text ? JSON.parse(text) : undefined };
}
const enqueuedOf = async (def: TaskDefinition) =>
  (await call("GET", `/v1/tasks?task=${def.name}&limit=100`, undefined, { base: app.url })).body.tasks.length;
const addr = (n: string | number) => `person-${n}-${tag}@celeriac.dev`;

describe("declaring a public task", () => {
  const freeText = v.strictObject({ email: v.pipe(v.string(), v.email()), message: v.string() });
  const run = async () => null;
  it("refuses one that lets the browser choose the recipient and free content, unless acknowledged", () => {
    expect(() => defineTask({ name: "relay", input: freeText, public: { recipient: "email" }, run })).toThrow(
      /free content \(message\): an open relay/,
    );
    expect(() =>
      defineTask({ name: "relay", input: freeText, public: { recipient: "email", acknowledge: OPEN_RELAY_ACK }, run }),
    ).not.toThrow();
  });
  it("refuses an address field it does not name as the recipient, a loose schema, and send-email or webhook", () => {
    expect(() =>
      defineTask({ name: "sneaky", input: v.strictObject({ to: v.string(), lang: v.picklist(["en"]) }), public: {}, run }),
    ).toThrow(/to hold an address/);
    expect(() =>
      defineTask({ name: "loose", input: v.object({ email: v.pipe(v.string(), v.email()) }), public: { recipient: "email" }, run }),
    ).toThrow(/strictObject/);
    for (const def of builtIn.filter((t) => t.name === "send-email" || t.name === "webhook")) {
      expect(() => defineTask({ ...def, public: {} } as never)).toThrow(/never public/);
    }
    expect(() =>
      defineTask({ name: "bad-origin", input, public: { recipient: "email", origins: ["https://shop.example/"] }, run }),
    ).toThrow(/exact origin/);
  });
  it("finds an address nested in an object, a list or a union, and refuses a recipient that is not one string", () => {
    const email = v.pipe(v.string(), v.email());
    const lang = v.picklist(["en"]);
    expect(() =>
      defineTask({ name: "nested", input: v.strictObject({ contact: v.strictObject({ address: email }), lang }), public: {}, run }),
    ).toThrow(/contact hold an address/);
    expect(() => defineTask({ name: "listed", input: v.strictObject({ list: v.array(email), lang }), public: {}, run })).toThrow(
      /list hold an address/,
    );
    expect(() =>
      defineTask({ name: "either", input: v.strictObject({ who: v.union([email, v.literal("me")]), lang }), public: {}, run }),
    ).toThrow(/who hold an address/);
    expect(() =>
      defineTask({ name: "many", input: v.strictObject({ to: v.array(email), lang }), public: { recipient: "to" }, run }),
    ).toThrow(/recipient "to" must be one string/);
  });
  it("accepts bounded fields: picklists and short regex-bound identifiers", () => {
    const slug = v.strictObject({
      email: v.pipe(v.string(), v.email()),
      purpose: v.pipe(v.string(), v.regex(/^[a-z-]+$/), v.maxLength(32)),
    });
    expect(() => defineTask({ name: "ok", input: slug, public: { recipient: "email" }, run })).not.toThrow();
  });
});

describe("CORS", () => {
  it("answers an allowed origin's preflight with its CORS headers", async () => {
    const r = await browser("OPTIONS", `/v1/public/${greet.name}`, {
      origin: SHOP,
      headers: { "access-control-request-method": "POST", "access-control-request-headers": "content-type" },
    });
    expect(r.status).toBe(204);
    expect(r.headers.get("access-control-allow-origin")).toBe(SHOP);
    expect(r.headers.get("access-control-allow-methods")).toContain("POST");
    expect(r.headers.get("access-control-allow-headers")).toContain("content-type");
  });
  it("refuses another origin, preflight or not, with a JSON 403 and no CORS headers; nothing is enqueued", async () => {
    for (const method of ["OPTIONS", "POST"]) {
      const r = await browser(method, `/v1/public/${greet.name}`, {
        origin: "https://evil.example",
        body: { email: addr("cors"), lang: "en" },
      });
      expect(r.status).toBe(403);
      expect(r.body.error.code).toBe("origin_not_allowed");
      expect(r.headers.get("access-control-allow-origin")).toBeNull();
    }
    // A look-alike is not the same origin.
    expect(
      (
        await browser("POST", `/v1/public/${greet.name}`, {
          origin: "https://shop.example.evil.example",
          body: { email: addr("cors"), lang: "en" },
        })
      ).status,
    ).toBe(403);
    expect(await enqueuedOf(greet)).toBe(0);
  });
  it("API-key routes keep refusing browsers' preflights", async () => {
    const r = await browser("OPTIONS", "/v1/tasks/send-email", { origin: SHOP, headers: { "access-control-request-method": "POST" } });
    expect(r.status).toBe(401);
    expect(r.headers.get("access-control-allow-origin")).toBeNull();
  });
  it("a task that is not public is not there", async () => {
    const r = await browser("POST", "/v1/public/send-email", { origin: SHOP, body: { to: "a@b.co", subject: "x", text: "y" } });
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe("unknown_task");
  });
});

describe("bad input gets its own 4xx and enqueues nothing", () => {
  const path = () => `/v1/public/${greet.name}`;
  it.each([
    ["malformed JSON", { raw: "{not json" }, 400, "invalid_json"],
    ["a wrong content type", { raw: "email=a@b.co", type: "application/x-www-form-urlencoded" }, 415, "unsupported_media_type"],
    ["an oversized body", { body: { email: addr("big"), lang: "en", pad: "x".repeat(5000) } }, 413, "body_too_large"],
    ["an unknown field", { body: { email: addr("unknown"), lang: "en", subject: "hi" } }, 422, "invalid_payload"],
    ["a bad address", { body: { email: "not-an-address", lang: "en" } }, 422, "invalid_payload"],
    ["a value outside the picklist", { body: { email: addr("lang"), lang: "de" } }, 422, "invalid_payload"],
  ])("%s", async (_, o, status, code) => {
    const r = await browser("POST", path(), { origin: SHOP, ...o });
    expect(r.status).toBe(status);
    expect(r.body.error.code).toBe(code);
    expect(r.headers.get("access-control-allow-origin")).toBe(SHOP); // the page can read why
  });
  it("none of them enqueued anything", async () => {
    expect(await enqueuedOf(greet)).toBe(0);
  });
});

describe("rate limits", () => {
  const post = (def: TaskDefinition, email: string, ip?: string) =>
    browser("POST", `/v1/public/${def.name}`, { origin: SHOP, body: { email, lang: "en" }, ...(ip ? { ip } : {}) });
  function expect429(r: Awaited<ReturnType<typeof browser>>, limit: string, q: number) {
    expect(r.status).toBe(429);
    expect(r.body.error.code).toBe("rate_limited");
    expect(r.body.limit).toBe(limit);
    expect(Number(r.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(r.headers.get("ratelimit-policy")).toBe(`"${limit}";q=${q};w=60`);
    expect(r.headers.get("ratelimit")).toMatch(new RegExp(`^"${limit}";r=0;t=\\d+$`));
    expect(r.headers.get("access-control-expose-headers")).toContain("retry-after");
  }
  it("per client IP: a third call from one address is refused, another address still passes", async () => {
    expect((await post(byIp, addr(1), "192.0.2.1")).status).toBe(202);
    const second = await post(byIp, addr(2), "192.0.2.1");
    expect(second.status).toBe(202);
    expect(second.headers.get("ratelimit")).toMatch(/^"ip";r=0;t=\d+$/);
    expect429(await post(byIp, addr(3), "192.0.2.1"), "ip", 2);
    expect((await post(byIp, addr(4), "192.0.2.2")).status).toBe(202);
    expect(await enqueuedOf(byIp)).toBe(3);
  });
  it("per recipient: the same address from many IPs, case and spaces aside", async () => {
    expect((await post(byRecipient, addr("r"), "192.0.2.10")).status).toBe(202);
    expect((await post(byRecipient, ` ${addr("r").toUpperCase()}`, "192.0.2.11")).status).toBe(202);
    expect429(await post(byRecipient, addr("r"), "192.0.2.12"), "recipient", 2);
    expect((await post(byRecipient, addr("other"), "192.0.2.12")).status).toBe(202);
    expect(await enqueuedOf(byRecipient)).toBe(3);
  });
  it("per client IP: an IPv6 address counts by its /64, however it is spelled; an IPv4-mapped one as IPv4", async () => {
    expect((await post(byIp6, addr("v6-1"), "2001:db8:1:2::1")).status).toBe(202);
    expect((await post(byIp6, addr("v6-2"), "2001:DB8:0001:0002:ffff::9")).status).toBe(202);
    expect429(await post(byIp6, addr("v6-3"), "2001:db8:1:2:0:0:0:3"), "ip", 2);
    expect((await post(byIp6, addr("v6-4"), "2001:db8:1:3::1")).status).toBe(202);
    expect((await post(byIp6, addr("v4-1"), "192.0.2.60")).status).toBe(202);
    expect((await post(byIp6, addr("v4-2"), "::ffff:192.0.2.60")).status).toBe(202);
    expect429(await post(byIp6, addr("v4-3"), "::ffff:c000:23c"), "ip", 2);
    expect(await enqueuedOf(byIp6)).toBe(5);
  });
  it("per recipient: one inbox's +tag and Gmail dot variants share the allowance", async () => {
    const inbox = `person.inbox-${tag}@gmail.com`;
    expect((await post(byInbox, inbox, "192.0.2.70")).status).toBe(202);
    expect((await post(byInbox, inbox.replace("@", "+1@"), "192.0.2.71")).status).toBe(202);
    expect429(await post(byInbox, inbox.replace(".", "").replace("@gmail", "+x@googlemail"), "192.0.2.72"), "recipient", 2);
    expect429(await post(byInbox, inbox.replace("@", "+2@"), "192.0.2.73"), "recipient", 2);
    expect(await enqueuedOf(byInbox)).toBe(2);
  });
  it("a caller over its IP limit uses up neither the recipient's nor the task's allowance", async () => {
    for (let i = 0; i < 2; i++) expect((await post(byAll, addr("target"), "192.0.2.80")).status).toBe(202);
    for (let i = 0; i < 5; i++) expect429(await post(byAll, addr("target"), "192.0.2.80"), "ip", 2);
    expect((await post(byAll, addr("target"), "192.0.2.81")).status).toBe(202); // the address's third
    expect((await post(byAll, addr("bystander"), "192.0.2.82")).status).toBe(202); // the task's fourth
    expect(await enqueuedOf(byAll)).toBe(4);
  });
  it("a call refused by one limit counts against none of the others", async () => {
    expect((await post(atomic, addr("once"), "192.0.2.90")).status).toBe(202);
    expect429(await post(atomic, addr("once"), "192.0.2.90"), "recipient", 1);
    expect((await post(atomic, addr("twice"), "192.0.2.90")).status).toBe(202); // the IP's second, not third
    const third = await post(atomic, addr("thrice"), "192.0.2.90");
    expect(third.status).toBe(202);
    expect(third.headers.get("ratelimit")).toMatch(/^"ip";r=0;t=\d+$/);
    expect429(await post(atomic, addr("fourth"), "192.0.2.90"), "ip", 3);
    expect(await enqueuedOf(atomic)).toBe(3);
  });
  it("no fail-open: with Redis unreachable a public call is a 503 and enqueues nothing", async () => {
    const saved = env;
    env = { ...env, UPSTASH_REDIS_REST_URL: `http://127.0.0.1:${await freePort()}` };
    try {
      const r = await post(noRedis, addr("no-redis"), "192.0.2.95");
      expect(r.status).toBe(503);
      expect(r.body.error.code).toBe("redis_unavailable");
    } finally {
      env = saved;
    }
    expect(await enqueuedOf(noRedis)).toBe(0);
  });
  it("per task overall", async () => {
    for (let i = 0; i < 3; i++) expect((await post(byTask, addr(`t${i}`), `192.0.2.${20 + i}`)).status).toBe(202);
    expect429(await post(byTask, addr("t9"), "192.0.2.29"), "task", 3);
    expect(await enqueuedOf(byTask)).toBe(3);
  });
  it("an accepted answer shows only the caller's own IP policy, never a recipient's count", async () => {
    const r = await post(greet, addr("quiet"), "192.0.2.40");
    expect(r.status).toBe(202);
    expect(r.headers.get("ratelimit-policy")).toBe('"ip";q=100;w=60');
    expect(Object.keys(r.body).sort()).toEqual(["receipt", "state"]);
  });
});

describe("receipts", () => {
  it("read that task's state only, and follow it to succeeded", async () => {
    const r = await browser("POST", `/v1/public/${greet.name}`, {
      origin: SHOP,
      body: { email: addr("receipt"), lang: "fr" },
      ip: "192.0.2.50",
    });
    expect(r.status).toBe(202);
    const path = `/v1/public/receipts/${r.body.receipt}`;
    const done = await until("the receipt to say succeeded", async () => {
      const s = await browser("GET", path, { origin: SHOP });
      return s.body?.state === "succeeded" ? s : undefined;
    });
    expect(done.body).toEqual({ state: "succeeded" });
    expect(done.headers.get("access-control-allow-origin")).toBe(SHOP);
    expect((await browser("GET", path, { origin: "https://evil.example" })).status).toBe(403);
  });
  it("a forged or altered receipt is unknown", async () => {
    const r = await browser("POST", `/v1/public/${greet.name}`, {
      origin: SHOP,
      body: { email: addr("forge"), lang: "en" },
      ip: "192.0.2.51",
    });
    const [id, task, exp, sig] = r.body.receipt.split(".");
    const other = `${id.slice(0, -1)}${id.endsWith("a") ? "b" : "a"}.${task}.${exp}.${sig}`;
    for (const bad of [other, `${id}.${task}.zzzzzz.${sig}`, "nonsense"]) {
      const s = await browser("GET", `/v1/public/receipts/${bad}`, { origin: SHOP });
      expect(s.status).toBe(404);
      expect(s.body.error.code).toBe("unknown_receipt");
    }
  });
  it("expires with the task's record: 410", async () => {
    const r = await browser("POST", `/v1/public/${shortLived.name}`, { origin: SHOP, body: { email: addr("short"), lang: "en" } });
    expect(r.status).toBe(202);
    const gone = await until(
      "the receipt to expire",
      async () => {
        const s = await browser("GET", `/v1/public/receipts/${r.body.receipt}`, { origin: SHOP });
        return s.status === 410 ? s : undefined;
      },
      10_000,
    );
    expect(gone.body.error.code).toBe("receipt_expired");
  });
});

describe("Turnstile", () => {
  const post = (headers: Record<string, string> = {}) =>
    browser("POST", `/v1/public/${botChecked.name}`, { origin: SHOP, body: { email: addr("bot"), lang: "en" }, headers });
  it("without a token: 403 turnstile_required; with the test key's dummy token: 202", async () => {
    const none = await post();
    expect(none.status).toBe(403);
    expect(none.body.error.code).toBe("turnstile_required");
    expect((await post({ "cf-turnstile-response": TURNSTILE_DUMMY_TOKEN })).status).toBe(202);
    expect(await enqueuedOf(botChecked)).toBe(1);
  });
  it("a token siteverify refuses: 403 turnstile_failed with Cloudflare's reason, nothing enqueued", async () => {
    for (const [secret, reason] of [
      [TURNSTILE_TEST_SECRETS.fail, "invalid-input-response"],
      [TURNSTILE_TEST_SECRETS.spent, "timeout-or-duplicate"],
    ] as const) {
      env = { ...env, TURNSTILE_SECRET_KEY: secret };
      const r = await fetch(`${app.url}/v1/public/${botChecked.name}`, {
        method: "POST",
        headers: { origin: SHOP, "content-type": "application/json", "cf-turnstile-response": TURNSTILE_DUMMY_TOKEN },
        body: JSON.stringify({ email: addr("bot2"), lang: "en" }),
      });
      expect(r.status).toBe(403);
      expect(await r.json()).toMatchObject({ error: { code: "turnstile_failed", message: expect.stringContaining(reason) } });
    }
    expect(await enqueuedOf(botChecked)).toBe(1);
  });
});

describe("Turnstile before the limits", () => {
  it("calls without a valid token use up neither an address's nor the task's allowance", async () => {
    env = { ...env, TURNSTILE_SECRET_KEY: TURNSTILE_TEST_SECRETS.pass };
    const post = (email: string, headers: Record<string, string> = {}) =>
      browser("POST", `/v1/public/${botLimited.name}`, { origin: SHOP, body: { email, lang: "en" }, headers });
    for (let i = 0; i < 3; i++) expect((await post(addr("victim"))).body.error.code).toBe("turnstile_required");
    const token = { "cf-turnstile-response": TURNSTILE_DUMMY_TOKEN };
    expect((await post(addr("victim"), token)).status).toBe(202);
    const again = await post(addr("victim"), token);
    expect(again.status).toBe(429);
    expect(again.body.limit).toBe("recipient");
    // The call refused for its recipient counted against the task's limit neither.
    expect((await post(addr("victim-2"), token)).status).toBe(202);
    expect((await post(addr("victim-3"), token)).status).toBe(202); // the task's third
    expect((await post(addr("victim-4"), token)).body.limit).toBe("task");
    expect(await enqueuedOf(botLimited)).toBe(3);
  });
});

describe("the siteverify stand-in", () => {
  it("answers form-encoded calls as Cloudflare documents its test secrets", async () => {
    const verify = async (secret: string, response?: string) => {
      const form = new URLSearchParams({ secret, ...(response ? { response } : {}) });
      return (await fetch(stack().turnstile, { method: "POST", body: form })).json();
    };
    expect(await verify(TURNSTILE_TEST_SECRETS.pass, TURNSTILE_DUMMY_TOKEN)).toMatchObject({ success: true, "error-codes": [] });
    expect(await verify(TURNSTILE_TEST_SECRETS.fail, TURNSTILE_DUMMY_TOKEN)).toMatchObject({
      success: false,
      "error-codes": ["invalid-input-response"],
    });
    expect(await verify(TURNSTILE_TEST_SECRETS.spent, TURNSTILE_DUMMY_TOKEN)).toMatchObject({
      success: false,
      "error-codes": ["timeout-or-duplicate"],
    });
    expect(await verify(TURNSTILE_TEST_SECRETS.pass)).toMatchObject({ success: false, "error-codes": ["missing-input-response"] });
    expect(await verify("0x4AAAAAAAnotatestkey", TURNSTILE_DUMMY_TOKEN)).toMatchObject({
      success: false,
      "error-codes": ["invalid-input-secret"],
    });
  });
});

/** The limiter itself, over the run's Redis (through the bridge) and under the run's key prefix. */
async function limiter() {
  const { Redis } = await import("@upstash/redis/cloudflare");
  const { enforceLimits } = await import("../src/rate-limit.ts");
  const redis = new Redis({
    url: stack().env.UPSTASH_REDIS_REST_URL!,
    token: stack().env.UPSTASH_REDIS_REST_TOKEN!,
    automaticDeserialization: false,
    enableAutoPipelining: false,
    responseEncoding: false,
  });
  return { redis, enforceLimits };
}

describe("the cost of the limits", () => {
  it("the three limits of one call are one Redis request (once the script is loaded)", async () => {
    const { redis, enforceLimits } = await limiter();
    const real = globalThis.fetch;
    let requests = 0;
    globalThis.fetch = ((...a: Parameters<typeof fetch>) => (requests++, real(...a))) as typeof fetch;
    try {
      const limits = { ip: { requests: 50, window: 60 }, recipient: { requests: 50, window: 60 }, task: { requests: 50, window: 60 } };
      const call = (i: number) =>
        enforceLimits(redis, keyPrefix(), `cost-${tag}`, limits, { ip: `192.0.2.${i}`, recipient: addr(`cost${i}`) });
      await call(1);
      requests = 0;
      await call(2);
      expect(requests).toBe(1);
      // A caller over its limit is told so by the isolate, without asking Redis again.
      const one = { ip: { requests: 1, window: 60 }, recipient: false as const, task: false as const };
      const over = () => enforceLimits(redis, keyPrefix(), `cost-${tag}`, one, { ip: "192.0.2.99" });
      await over();
      await expect(over()).rejects.toMatchObject({ status: 429, retryAfter: expect.any(Number) });
      requests = 0;
      await expect(over()).rejects.toMatchObject({ status: 429, code: "rate_limited", extra: { limit: "ip" } });
      expect(requests).toBe(0);
    } finally {
      globalThis.fetch = real;
    }
  });
});

describe("the limiter's answers", () => {
  it("a refusal told by the isolate names the limit that frees last, as Redis's answer did", async () => {
    const { redis, enforceLimits } = await limiter();
    // The IP's limit frees in seconds, the recipient's in ten minutes: the call waits for both.
    const limits = { ip: { requests: 1, window: 5 }, recipient: { requests: 1, window: 600 }, task: false as const };
    const who = { ip: "192.0.2.121", recipient: addr("frees-last") };
    const call = () => enforceLimits(redis, keyPrefix(), `frees-last-${tag}`, limits, who).catch((e: unknown) => e);
    expect(await call()).toEqual({ headers: expect.any(Object) });
    const fromRedis = (await call()) as { status: number; retryAfter: number; extra: { limit: string } };
    expect(fromRedis).toMatchObject({ status: 429, extra: { limit: "recipient" } });
    expect(fromRedis.retryAfter).toBeGreaterThan(5);
    const real = globalThis.fetch;
    let requests = 0;
    globalThis.fetch = ((...a: Parameters<typeof fetch>) => (requests++, real(...a))) as typeof fetch;
    try {
      const fromIsolate = (await call()) as { status: number; retryAfter: number; extra: { limit: string } };
      expect(requests).toBe(0);
      expect(fromIsolate).toMatchObject({ status: 429, extra: { limit: "recipient" } });
      expect(fromIsolate.retryAfter).toBeGreaterThanOrEqual(fromRedis.retryAfter - 1);
    } finally {
      globalThis.fetch = real;
    }
  });

  it("a window of 16.1 s (16100.000000000002 ms in floating point) counts, and its key expires", async () => {
    const { redis, enforceLimits } = await limiter();
    const { ipBucket } = await import("../src/client-ip.ts");
    const task = `decimal-window-${tag}`;
    const limits = { ip: { requests: 2, window: 16.1 }, recipient: false as const, task: false as const };
    const ip = "192.0.2.122";
    await expect(enforceLimits(redis, keyPrefix(), task, limits, { ip })).resolves.toMatchObject({ headers: expect.any(Object) });
    const ttl = await redis.pttl(`${keyPrefix()}rl:${task}:ip:${ipBucket(ip)}`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(16_100);
  });
});

describe("configuration of the browsers' routes", () => {
  it("a missing receipt secret is named in /healthz (degraded) and by the public routes (503); the rest works", async () => {
    const { createApp } = await import("../src/app.ts");
    const app = createApp({ tasks });
    const bare = { ...stack().env, CELERIAC_RECEIPT_SECRET: "" };
    const health = await app.request("/healthz", {}, bare);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({
      degraded: true,
      checks: { public: { ok: false, problems: [expect.stringContaining("CELERIAC_RECEIPT_SECRET")] } },
    });
    const r = await app.request(
      `/v1/public/${greet.name}`,
      {
        method: "POST",
        headers: { "content-type": "application/json", origin: SHOP },
        body: JSON.stringify({ email: addr("cfg"), lang: "en" }),
      },
      bare,
    );
    expect(r.status).toBe(503);
    expect(await r.json()).toMatchObject({ error: { code: "misconfigured", message: expect.stringContaining("CELERIAC_RECEIPT_SECRET") } });
    const listed = await app.request(
      "/v1/tasks?limit=1",
      { headers: { authorization: `Bearer ${stack().env.CELERIAC_API_KEYS!.split(":")[1]}` } },
      bare,
    );
    expect(listed.status).toBe(200);
  });
});

describe("the client address", () => {
  it("is CF-Connecting-IP only on Workers, a forwarded header only when trusted, else the socket's peer", async () => {
    const { PEER_ADDRESS, clientIp } = await import("../src/client-ip.ts");
    const forged = { "cf-connecting-ip": "203.0.113.1", "x-forwarded-for": "203.0.113.2, 198.51.100.7" };
    const plain = new Request("http://x/", { headers: forged });
    expect(clientIp(plain, "")).toBe("unknown");
    Object.defineProperty(plain, PEER_ADDRESS, { value: "192.0.2.200" });
    expect(clientIp(plain, "")).toBe("192.0.2.200");
    expect(clientIp(plain, "x-forwarded-for")).toBe("198.51.100.7"); // the entry the trusted proxy appended
    const onWorkers = Object.assign(new Request("http://x/", { headers: forged }), { cf: {} });
    expect(clientIp(onWorkers, "")).toBe("203.0.113.1");
  });
});
