// Conformance of the Upstash-REST bridge: the same suite, through the official @upstash/redis
// client with its defaults (auto-pipelining, base64 responses), against both backends.
import { randomUUID } from "node:crypto";
import { Redis } from "@upstash/redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RedisBridge, startRedisBridge } from "../dev/redis-bridge.ts";

const realRedisAnswers = await startRedisBridge({ port: 0, backend: "redis" })
  .then((b) => b.close().then(() => true))
  .catch(() => false);
if (!realRedisAnswers) console.warn("[celeriac] no Redis at REDIS_URL / 127.0.0.1:6379: skipping the real-Redis run");

describe.each(["redis", "memory"] as const)("redis bridge over %s", (backend) => {
  let bridge: RedisBridge;
  let redis: Redis;
  const p = `celeriac-test:bridge:${backend}:${randomUUID()}:`;

  /** Raw REST call, to check the wire itself. */
  const raw = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${bridge.url}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${bridge.token}`, ...headers },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });

  beforeAll(async () => {
    bridge = await startRedisBridge({ port: 0, backend });
    redis = new Redis({ url: bridge.url, token: bridge.token });
  });

  afterAll(async () => {
    if (!bridge) return;
    const keys = (await (await raw("/", ["keys", `${p}*`])).json()) as { result: string[] };
    if (keys.result.length) await raw("/", ["del", ...keys.result]);
    await bridge.close();
  });

  it.skipIf(backend === "redis" && !realRedisAnswers)("reports the backend it runs on", () => {
    expect(bridge.backend).toBe(backend);
    expect(bridge.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  describe.skipIf(backend === "redis" && !realRedisAnswers)("through @upstash/redis", () => {
    it("round-trips strings that look like base64, unicode and emoji", async () => {
      const values = ["test", "aGVsbG8=", "OK", "héllo wörld ✓ 日本語 😀👩‍👩‍👧", ""];
      for (const [i, v] of values.entries()) await redis.set(`${p}s${i}`, v);
      expect(await Promise.all(values.map((_, i) => redis.get(`${p}s${i}`)))).toEqual(values);
      expect(await redis.get(`${p}missing`)).toBeNull();
      expect(await redis.set(`${p}ключ😀`, "v")).toBe("OK");
      expect(await redis.get(`${p}ключ😀`)).toBe("v");
    });

    it("round-trips JSON values and numbers", async () => {
      const obj = { id: "t_1", n: 3, nested: { ok: true, list: [1, "two", null] }, s: "ü" };
      await redis.set(`${p}json`, obj);
      expect(await redis.get(`${p}json`)).toEqual(obj);
      await redis.set(`${p}num`, 42);
      expect(await redis.get(`${p}num`)).toBe(42);
      expect(await redis.incr(`${p}num`)).toBe(43);
      expect(await redis.incrby(`${p}num`, 10)).toBe(53);
      expect(await redis.decr(`${p}num`)).toBe(52);
      expect(await redis.incrbyfloat(`${p}float`, 1.5)).toBe(1.5);
      const plain = new Redis({ url: bridge.url, token: bridge.token, automaticDeserialization: false });
      expect(await plain.get(`${p}json`)).toBe(JSON.stringify(obj));
      expect(await plain.get(`${p}num`)).toBe("52");
    });

    it("keeps expiries", async () => {
      await redis.set(`${p}exp`, "v", { ex: 100 });
      const ttl = await redis.ttl(`${p}exp`);
      expect(ttl).toBeGreaterThan(95);
      expect(ttl).toBeLessThanOrEqual(100);
      await redis.set(`${p}exp2`, "v");
      expect(await redis.ttl(`${p}exp2`)).toBe(-1);
      expect(await redis.expire(`${p}exp2`, 50)).toBe(1);
      expect(await redis.pttl(`${p}exp2`)).toBeGreaterThan(45_000);
      expect(await redis.ttl(`${p}nope`)).toBe(-2);
      expect(await redis.set(`${p}exp`, "w", { nx: true })).toBeNull();
      expect(await redis.get(`${p}exp`)).toBe("v");
    });

    it("handles hashes", async () => {
      expect(await redis.hset(`${p}h`, { a: 1, b: "x", c: { d: [1] } })).toBe(3);
      expect(await redis.hgetall(`${p}h`)).toEqual({ a: 1, b: "x", c: { d: [1] } });
      expect(await redis.hincrby(`${p}h`, "a", 5)).toBe(6);
      expect(await redis.hget(`${p}h`, "a")).toBe(6);
      expect(await redis.hget(`${p}h`, "zz")).toBeNull();
      expect(await redis.hdel(`${p}h`, "b")).toBe(1);
      expect((await redis.hkeys(`${p}h`)).sort()).toEqual(["a", "c"]);
      expect(await redis.hgetall(`${p}nohash`)).toBeNull();
    });

    it("handles sorted sets", async () => {
      const z = `${p}z`;
      expect(await redis.zadd(z, { score: 1.5, member: "a" }, { score: 3, member: "c" }, { score: 2, member: "b" })).toBe(3);
      expect(await redis.zrange(z, 0, -1)).toEqual(["a", "b", "c"]);
      expect(await redis.zrange(z, 0, -1, { withScores: true })).toEqual(["a", 1.5, "b", 2, "c", 3]);
      expect(await redis.zrange(z, "+inf", 2, { byScore: true, rev: true, withScores: true })).toEqual(["c", 3, "b", 2]);
      expect(await redis.zscore(z, "a")).toBe(1.5);
      expect(await redis.zincrby(z, 10, "a")).toBe(11.5);
      expect(await redis.zcard(z)).toBe(3);
      const body = await (await raw("/", ["zrevrangebyscore", z, "+inf", "-inf", "WITHSCORES"])).json();
      expect(body).toEqual({ result: ["a", "11.5", "c", "3", "b", "2"] });
    });

    it("handles lists and sets", async () => {
      expect(await redis.rpush(`${p}l`, "a", "b")).toBe(2);
      expect(await redis.lpush(`${p}l`, "z")).toBe(3);
      expect(await redis.lrange(`${p}l`, 0, -1)).toEqual(["z", "a", "b"]);
      expect(await redis.lpop(`${p}l`)).toBe("z");
      expect(await redis.llen(`${p}l`)).toBe(2);
      expect(await redis.sadd(`${p}set`, "x", "y", "x")).toBe(2);
      expect((await redis.smembers(`${p}set`)).sort()).toEqual(["x", "y"]);
      expect(await redis.sismember(`${p}set`, "y")).toBe(1);
      expect(await redis.srem(`${p}set`, "x")).toBe(1);
      expect(await redis.scard(`${p}set`)).toBe(1);
    });

    it("runs explicit pipelines, keeping per-command errors", async () => {
      const res = await redis.pipeline().set(`${p}pl`, "1").incr(`${p}pl`).get(`${p}pl`).exec();
      expect(res).toEqual(["OK", 2, 2]);
      const mixed = await redis.pipeline().set(`${p}pl2`, "text").incr(`${p}pl2`).get(`${p}pl2`).exec({ keepErrors: true });
      expect(mixed[0]).toEqual({ result: "OK", error: undefined });
      expect(mixed[1]?.error).toMatch(/not an integer/);
      expect(mixed[2]).toEqual({ result: "text", error: undefined });
      await expect(redis.pipeline().set(`${p}pl3`, "x").lpush(`${p}pl3`, "y").exec()).rejects.toThrow(/WRONGTYPE/);
    });

    it("runs transactions atomically; a failing command does not roll back the others", async () => {
      expect(await redis.multi().set(`${p}tx`, 5).incr(`${p}tx`).hset(`${p}txh`, { f: 1 }).exec()).toEqual(["OK", 6, 1]);
      const res = await redis.multi().incr(`${p}tx`).lpush(`${p}tx`, "x").incr(`${p}tx`).exec({ keepErrors: true });
      expect(res[0]?.result).toBe(7);
      expect(res[1]?.error).toMatch(/WRONGTYPE/);
      expect(res[2]?.result).toBe(8);
      await expect(redis.multi().set(`${p}tx2`, "a").lpush(`${p}tx2`, "b").exec()).rejects.toThrow(/WRONGTYPE/);
      expect(await redis.get(`${p}tx2`)).toBe("a");
    });

    it("runs Lua: eval, evalsha, scriptLoad and the Script helper", async () => {
      const echo = "return {KEYS[1], ARGV[1], tonumber(ARGV[2]) + 1, redis.call('incr', KEYS[2])}";
      expect(await redis.eval(echo, [`${p}k`, `${p}ctr`], ["héllo 😀", 41])).toEqual([`${p}k`, "héllo 😀", 42, 1]);
      expect(await redis.eval("return {3.99, -2.5, true, false, 'x'}", [], [])).toEqual([3, -2, 1, null, "x"]);
      // Millisecond timestamps print as integers, as in Redis's Lua 5.1.
      const ms = "return tostring(tonumber(ARGV[1])) .. ':' .. (tonumber(ARGV[1]) + 1) .. ':' .. cjson.encode({tonumber(ARGV[1])})";
      expect(await redis.eval(ms, [], ["1764180000000"])).toBe("1764180000000:1764180000001:[1764180000000]");
      await expect(redis.evalsha("0123456789012345678901234567890123456789", [], [])).rejects.toThrow(/NOSCRIPT/);
      const sha = await redis.scriptLoad(`return ARGV[1] .. ':${p}'`);
      expect(sha).toMatch(/^[0-9a-f]{40}$/);
      expect(await redis.evalsha(sha, [], ["loaded"])).toBe(`loaded:${p}`);
      const script = redis.createScript<number>(`-- ${p}\nreturn redis.call('incrby', KEYS[1], ARGV[1])`);
      expect(await script.exec([`${p}script`], ["5"])).toBe(5); // EVALSHA → NOSCRIPT → EVAL
      expect(await script.exec([`${p}script`], ["5"])).toBe(10); // cached now
      expect(await redis.eval("return redis.status_reply('FINE')", [], [])).toBe("FINE");
      await expect(redis.eval("return redis.error_reply('MYERR boom')", [], [])).rejects.toThrow(/MYERR boom/);
      await expect(redis.eval("return redis.call('lpush', KEYS[1], 'x')", [`${p}ctr`], [])).rejects.toThrow(/WRONGTYPE/);
      expect(await redis.eval("local e = redis.pcall('lpush', KEYS[1], 'x'); return e.err", [`${p}ctr`], [])).toMatch(/^WRONGTYPE/);
      await expect(redis.eval("error('boom')", [], [])).rejects.toThrow(/user_script:1: boom/);
      await expect(redis.eval("return +", [], [])).rejects.toThrow(/Error compiling script/);
      const rec = await redis.eval(
        "local r = cjson.decode(ARGV[1]); r.n = r.n + 1; redis.call('set', KEYS[1], cjson.encode(r)); return redis.call('get', KEYS[1])",
        [`${p}rec`],
        [JSON.stringify({ n: 1, s: "ü" })],
      );
      expect(rec).toEqual({ n: 2, s: "ü" });
    });

    it("rejects command errors", async () => {
      await redis.set(`${p}str`, "text");
      await expect(redis.lpush(`${p}str`, "x")).rejects.toThrow(/WRONGTYPE/);
      await expect(redis.hget(`${p}str`, "f")).rejects.toThrow(/WRONGTYPE/);
      await expect(redis.zadd(`${p}str`, { score: 1, member: "m" })).rejects.toThrow(/WRONGTYPE/);
      await expect(redis.incr(`${p}str`)).rejects.toThrow(/not an integer/);
      expect(await redis.get(`${p}str`)).toBe("text");
    });
  });

  describe.skipIf(backend === "redis" && !realRedisAnswers)("on the wire", () => {
    it("requires the bearer token on every path", async () => {
      for (const path of ["/", "/pipeline", "/multi-exec", "/get/x"]) {
        const bad = await raw(path, ["ping"], { authorization: "Bearer wrong" });
        expect(bad.status).toBe(401);
        expect(await bad.json()).toHaveProperty("error");
      }
      const none = await fetch(`${bridge.url}/`, { method: "POST", body: '["ping"]' });
      expect(none.status).toBe(401);
    });

    it("always sends `result`, base64-encodes strings on request and echoes the sync token", async () => {
      const missing = await raw("/", ["get", `${p}none`], { "upstash-sync-token": "tok-1" });
      expect(missing.status).toBe(200);
      expect(missing.headers.get("upstash-sync-token")).toBe("tok-1");
      expect(await missing.text()).toBe('{"result":null}');
      await raw("/", ["set", `${p}w`, "test"]);
      const b64 = await raw("/", ["get", `${p}w`], { "Upstash-Encoding": "base64" });
      expect(await b64.json()).toEqual({ result: "dGVzdA==" });
      const ok = await raw("/", ["set", `${p}w`, "test"], { "Upstash-Encoding": "base64" });
      expect(await ok.json()).toEqual({ result: "OK" });
      await raw("/", ["hset", `${p}wh`, "f", "v", "n", 7]);
      const hash = await raw("/", ["hgetall", `${p}wh`], { "Upstash-Encoding": "base64" });
      expect(await hash.json()).toEqual({ result: ["Zg==", "dg==", "bg==", "Nw=="] });
      const n = await raw("/", ["hincrby", `${p}wh`, "n", 1], { "Upstash-Encoding": "base64" });
      expect(await n.json()).toEqual({ result: 8 });
      // Bytes that are not UTF-8 come through as they are.
      const bin = await raw("/", ["eval", "return string.char(255, 0, 1)", 0], { "Upstash-Encoding": "base64" });
      expect(await bin.json()).toEqual({ result: "/wAB" });
    });

    it("answers malformed requests and failed commands with 400 and a Redis-style error", async () => {
      const cases: [string, unknown, RegExp][] = [
        ["/", [], /^ERR /],
        ["/", "{not json", /^ERR .*JSON/],
        ["/", ["set", { a: 1 }], /^ERR /],
        ["/", ["nosuchcommand", "x"], /^ERR unknown command/],
        ["/", ["get"], /^ERR wrong number of arguments/],
        ["/", ["evalsha", "0123456789012345678901234567890123456789", 0], /^NOSCRIPT No matching script/],
        ["/", ["blpop", `${p}q`, 0], /^ERR .*blpop/],
        ["/", ["subscribe", "ch"], /^ERR .*subscribe/],
        ["/", ["select", 1], /^ERR .*select/],
        ["/pipeline", [], /^ERR /],
        ["/multi-exec", [["set", `${p}m`, "1"], ["nosuchcommand"]], /^EXECABORT/],
        ["/multi-exec", [["watch", `${p}m`]], /^ERR .*watch/],
      ];
      for (const [path, body, pattern] of cases) {
        const res = await raw(path, body);
        const json = (await res.json()) as { error?: string };
        expect({ path, body, status: res.status, error: json.error }).toMatchObject({ status: 400, error: expect.stringMatching(pattern) });
      }
      expect(await (await raw("/", ["get", `${p}m`])).json()).toEqual({ result: null }); // discarded
      const pipe = await raw("/pipeline", [
        ["set", `${p}pw`, 1],
        ["blpop", "x", 0],
        ["incr", `${p}pw`],
      ]);
      const entries = (await pipe.json()) as { result?: unknown; error?: string }[];
      expect(entries[0]).toEqual({ result: "OK" });
      expect(entries[1]?.error).toMatch(/blpop/);
      expect(entries[2]).toEqual({ result: 2 });
    });

    it("refuses bodies over 10 MB", async () => {
      const res = await raw("/", JSON.stringify(["set", `${p}big`, "x".repeat(10 * 1024 * 1024)]));
      expect(res.status).toBe(413);
      expect(((await res.json()) as { error: string }).error).toMatch(/10 MB/);
    });
  });
});
