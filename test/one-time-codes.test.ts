// One-time codes against the real Redis (through the Upstash-REST bridge): the cooldown, a new
// code replacing the old, single use, the wrong-try limit, expiry (short TTLs), and tokens that a
// standard JWT library verifies.
import { Redis } from "@upstash/redis/cloudflare";
import { sign, verify } from "hono/jwt";
import { jwtVerify } from "jose";
import { afterAll, describe, expect, it } from "vitest";
import { checkCode, codeFor, issueCode, MAX_TRIES, signToken } from "../src/one-time-codes.ts";
import { stack } from "./helpers/api.ts";

const tag = Math.random().toString(36).slice(2, 8);
const SECRET = "test-secret-for-one-time-codes-0123456789";
const prefix = `celeriac-test:${tag}:codes:`;
const redis = () =>
  new Redis({
    url: stack().env.UPSTASH_REDIS_REST_URL!,
    token: stack().env.UPSTASH_REDIS_REST_TOKEN!,
    automaticDeserialization: false,
    enableAutoPipelining: false,
  });
let n = 0;
const fresh = () => ({ email: `someone-${tag}-${n++}@celeriac.dev`, purpose: "sign-in" });
const id = () => `tsk_${Math.random().toString(36).slice(2).padEnd(26, "0").slice(0, 26)}`;
const issue = (who: { email: string; purpose: string }, taskId = id(), o: { ttl?: number; cooldown?: number } = {}) =>
  issueCode(redis(), prefix, { secret: SECRET, ...who, taskId, ...o });
const check = (who: { email: string; purpose: string }, code: string) => checkCode(redis(), prefix, { secret: SECRET, ...who, code });
afterAll(async () => {
  const keys = await redis().keys(`${prefix}*`);
  if (keys.length) await redis().del(...keys);
});
const wrong = (code: string) => String((Number(code) + 1) % 1_000_000).padStart(6, "0");

describe("codes", () => {
  it("are six digits, spread over the whole range, and the same for every retry of one task", async () => {
    const codes = await Promise.all(Array.from({ length: 2000 }, (_, i) => codeFor(SECRET, `tsk_${String(i).padStart(26, "0")}`)));
    for (const c of codes) expect(c).toMatch(/^\d{6}$/);
    // Uniform over 10^6 values: each leading digit holds about a tenth (200 of 2000; 5 sigma is ±67).
    const lead = Array.from({ length: 10 }, (_, d) => codes.filter((c) => c[0] === String(d)).length);
    for (const count of lead) expect(Math.abs(count - 200)).toBeLessThan(67);
    expect(new Set(codes).size).toBeGreaterThan(1990);
    expect(await codeFor(SECRET, "tsk_same")).toBe(await codeFor(SECRET, "tsk_same"));
    expect(await codeFor("another-secret-entirely-000000000000", "tsk_same")).not.toBe(await codeFor(SECRET, "tsk_same"));
  });

  it("are kept only as a keyed hash: no code or address in Redis", async () => {
    const who = fresh();
    const { code } = await issue(who);
    const keys = await redis().keys(`${prefix}*`);
    const values = await Promise.all(keys.map((k) => redis().get<string>(k)));
    const all = [...keys, ...values.map(String)].join("\n");
    expect(all).not.toContain(code!);
    expect(all).not.toContain(who.email);
  });
});

describe("the cooldown", () => {
  it("a second request within it makes no code; a retry of the first task gets the same code", async () => {
    const who = fresh();
    const first = id();
    const a = await issue(who, first);
    expect(a.code).toMatch(/^\d{6}$/);
    expect((await issue(who)).code).toBeNull();
    expect((await issue(who, first)).code).toBe(a.code);
    expect(await check(who, a.code!)).toEqual({ ok: true });
  });
  it("a retry of the task neither revives its used code nor clears its wrong tries", async () => {
    const used = fresh();
    const first = id();
    const a = await issue(used, first);
    expect(await check(used, a.code!)).toEqual({ ok: true });
    expect((await issue(used, first)).code).toBe(a.code);
    expect(await check(used, a.code!)).toEqual({ ok: false, reason: "used" });

    const guessed = fresh();
    const second = id();
    const b = await issue(guessed, second);
    for (let i = 0; i < MAX_TRIES - 1; i++) await check(guessed, wrong(b.code!));
    expect((await issue(guessed, second)).code).toBe(b.code);
    expect(await check(guessed, wrong(b.code!))).toEqual({ ok: false, reason: "wrong", triesLeft: 0 });
    expect(await check(guessed, b.code!)).toEqual({ ok: false, reason: "dead" });
  });
  it("after it, a new code replaces the old one", async () => {
    const who = fresh();
    const a = await issue(who, id(), { cooldown: 0.2 });
    await new Promise((r) => setTimeout(r, 300));
    const b = await issue(who, id(), { cooldown: 0.2 });
    expect(b.code).not.toBeNull();
    if (a.code !== b.code) expect(await check(who, a.code!)).toMatchObject({ ok: false, reason: "wrong" });
    expect(await check(who, b.code!)).toEqual({ ok: true });
  });
});

describe("checking", () => {
  it("a code works once", async () => {
    const who = fresh();
    const { code } = await issue(who);
    expect(await check(who, code!)).toEqual({ ok: true });
    expect(await check(who, code!)).toEqual({ ok: false, reason: "used" });
  });
  it("a code for one purpose or address does not open another", async () => {
    const who = fresh();
    const { code } = await issue(who);
    expect(await check({ ...who, purpose: "email-change" }, code!)).toEqual({ ok: false, reason: "missing" });
    expect(await check({ ...who, email: `x${who.email}` }, code!)).toEqual({ ok: false, reason: "missing" });
    expect(await check({ ...who, email: ` ${who.email.toUpperCase()} ` }, code!)).toEqual({ ok: true });
  });
  it(`${MAX_TRIES} wrong tries kill the code, even for the right one after`, async () => {
    const who = fresh();
    const { code } = await issue(who);
    const left = [];
    for (let i = 0; i < MAX_TRIES; i++) left.push(await check(who, wrong(code!)));
    expect(left.map((r) => ("triesLeft" in r ? r.triesLeft : r))).toEqual([4, 3, 2, 1, 0]);
    expect(await check(who, code!)).toEqual({ ok: false, reason: "dead" });
  });
  it("parallel guesses share the same tries: at most 5 are compared", async () => {
    const who = fresh();
    const { code } = await issue(who);
    const guesses = await Promise.all(Array.from({ length: 20 }, () => check(who, wrong(code!))));
    expect(guesses.filter((g) => !g.ok && g.reason === "wrong")).toHaveLength(MAX_TRIES);
    expect(guesses.filter((g) => !g.ok && g.reason === "dead")).toHaveLength(20 - MAX_TRIES);
  });
  it("an expired code is told apart from a missing one", async () => {
    const who = fresh();
    const { code } = await issue(who, id(), { ttl: 0.3 });
    await new Promise((r) => setTimeout(r, 400));
    expect(await check(who, code!)).toEqual({ ok: false, reason: "expired" });
    expect(await check(fresh(), "123456")).toEqual({ ok: false, reason: "missing" });
  });
  it("a new code clears the old code's wrong tries", async () => {
    const who = fresh();
    const a = await issue(who, id(), { cooldown: 0.1 });
    for (let i = 0; i < MAX_TRIES - 1; i++) await check(who, wrong(a.code!));
    await new Promise((r) => setTimeout(r, 200));
    const b = await issue(who, id(), { cooldown: 0.1 });
    expect(await check(who, wrong(b.code!))).toMatchObject({ reason: "wrong", triesLeft: MAX_TRIES - 1 });
  });
});

describe("tokens", () => {
  it("are HS256 JWTs with sub, purpose and exp that a JWT library verifies", async () => {
    const token = await signToken(SECRET, { email: " Ann@Example.com ", purpose: "sign-in", ttl: 120 });
    const claims = await verify(token, SECRET, "HS256");
    expect(claims).toMatchObject({ sub: "ann@example.com", purpose: "sign-in", iss: "celeriac" });
    expect(Number(claims.exp) - Number(claims.iat)).toBe(120);
    await expect(verify(token, "not-the-secret-000000000000000000000", "HS256")).rejects.toThrow();
    const expired = await signToken(SECRET, { email: "a@b.co", purpose: "x", ttl: 1, now: Date.now() - 10_000 });
    await expect(verify(expired, SECRET, "HS256")).rejects.toThrow(/expired/i);
  });
  it("are the same bytes a JWT library signs, and jose verifies them (header included)", async () => {
    const now = Date.now();
    const iat = Math.floor(now / 1000);
    const token = await signToken(SECRET, { email: "Bea@Example.com", purpose: "sign-in", now });
    const claims = { sub: "bea@example.com", purpose: "sign-in", iat, exp: iat + 600, iss: "celeriac" };
    expect(token).toBe(await sign(claims, SECRET, "HS256"));
    const { payload, protectedHeader } = await jwtVerify(token, new TextEncoder().encode(SECRET), { algorithms: ["HS256"] });
    expect(protectedHeader).toEqual({ alg: "HS256", typ: "JWT" });
    expect(payload).toEqual(claims);
  });
});
