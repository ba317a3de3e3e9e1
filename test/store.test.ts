// The result store's Lua scripts against Redis (through the Upstash-REST bridge), under a
// prefix of their own: races between enqueue and delivery, undo, generations and expiry.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/env.ts";
import { newTaskId } from "../src/ids.ts";
import { taskKv } from "../src/kv.ts";
import { servicesFor } from "../src/services.ts";
import { type NewRecord, TaskStore, utcDay } from "../src/store/index.ts";
import { stack } from "./helpers/api.ts";

let store: TaskStore;
const prefix = `celeriac-test-${Math.random().toString(36).slice(2, 8)}:`;
beforeAll(() => {
  store = new TaskStore(servicesFor(loadConfig({ ...stack().env })).redis, prefix);
});
afterAll(async () => {
  const keys = (await store.redis.keys(`${prefix}*`)) as string[];
  if (keys.length) await store.redis.del(...keys);
});

const record = (over: Partial<NewRecord> = {}): NewRecord => {
  const now = Date.now();
  return {
    id: newTaskId(now),
    task: "probe",
    state: "queued",
    payload: { n: 1 },
    options: { retries: 3, timeout: 30, resultTtl: 3600 },
    createdAt: now,
    runAt: now,
    ...over,
  };
};
const members = (key: string) => store.redis.zrange(prefix + key, 0, -1) as Promise<string[]>;
const counter = async (what: string) => Number((await store.redis.hget(`${prefix}stats:${utcDay(Date.now())}`, `probe:${what}`)) ?? 0);

describe("store", () => {
  it("keeps the record a delivery made when the enqueue's write arrives after it", async () => {
    const r = record();
    const enqueuedBefore = await counter("enqueued");
    expect(await store.claim(r, "msg_1", Date.now(), 60_000)).toEqual({ kind: "run", attempt: 1 });
    expect(await store.createMany([r], [""])).toEqual([{ kind: "new" }]);
    const rec = await store.get(r.id);
    expect(rec).toMatchObject({ state: "running", attempts: 1, messageId: "msg_1" });
    expect(await counter("enqueued")).toBe(enqueuedBefore + 1);
    expect(await members("i:state:running")).toContain(r.id);
    expect(await members("i:state:queued")).not.toContain(r.id);
  });

  it("does not run a message whose payload is not the record's (a key reused for another payload)", async () => {
    const r = record();
    await store.createMany([r], [""]);
    expect(await store.claim({ ...r, payload: { n: 2 } }, "msg_other", Date.now(), 60_000)).toEqual({ kind: "stale" });
    expect(await store.claim(r, "msg_own", Date.now(), 60_000)).toEqual({ kind: "run", attempt: 1 });
  });

  it("tells a repeat from a key reused for another payload", async () => {
    const r = record();
    expect(await store.createMany([r], [store.idemKey("k", r.id)])).toEqual([{ kind: "new" }]);
    expect(await store.createMany([{ ...r, createdAt: r.createdAt + 5 }], [store.idemKey("k", r.id)])).toEqual([
      { kind: "dup", createdAt: r.createdAt },
    ]);
    expect(await store.createMany([{ ...r, payload: { n: 2 } }], [store.idemKey("k", r.id)])).toEqual([
      { kind: "mismatch", task: "probe" },
    ]);
  });

  it("discard undoes a create: record, indexes, idempotency key and count", async () => {
    const r = record({ state: "scheduled" });
    const before = await counter("enqueued");
    const key = store.idemKey("k", r.id);
    await store.createMany([r], [key]);
    await store.discard([r.id], [key], Date.now());
    expect(await store.get(r.id)).toBeNull();
    for (const idx of ["i:all", "i:task:probe", "i:state:scheduled", "i:task:probe:state:scheduled"])
      expect(await members(idx)).not.toContain(r.id);
    expect(await store.redis.exists(key)).toBe(0);
    expect(await counter("enqueued")).toBe(before);
    // Nor is it left in the expiry index, as a task no caller was ever told about.
    expect((await members("expiry")).some((m) => m.startsWith(r.id))).toBe(false);
  });

  it("a refused create (a repeat, or a key reused for another payload) changes nothing, not even the expiry index", async () => {
    const r = record();
    const key = store.idemKey("k", r.id);
    await store.createMany([r], [key]);
    // An expired entry that the next real create would prune.
    const ghost = `${newTaskId(Date.now() - 10_000)}|probe`;
    await store.redis.zadd(`${prefix}expiry`, { score: Date.now() - 1_000, member: ghost });
    const before = await members("expiry");
    expect(await store.createMany([{ ...r, createdAt: Date.now() }], [key])).toEqual([{ kind: "dup", createdAt: r.createdAt }]);
    expect(await store.createMany([{ ...r, payload: { n: 9 }, createdAt: Date.now() }], [key])).toEqual([
      { kind: "mismatch", task: "probe" },
    ]);
    expect(await members("expiry")).toEqual(before);
    await store.createMany([record()], [""]);
    expect(await members("expiry")).not.toContain(ghost);
  });

  it("ignores a change for another generation, and lets the fenced attempt replace a failure", async () => {
    const r = record({ gen: 1 });
    await store.createMany([r], [""]);
    const failOld = { from: ["queued", "running"] as const, to: "failed" as const, at: Date.now(), gen: 0 };
    expect(await store.transition(r.id, { ...failOld, from: [...failOld.from] })).toEqual({ kind: "conflict", state: "queued" });
    await store.claim(r, "msg_2", Date.now(), 60_000);
    expect(await store.transition(r.id, { from: ["running"], to: "failed", at: Date.now(), gen: 1 })).toMatchObject({ kind: "ok" });
    // The attempt that was still running finishes: its success replaces the failure.
    expect(await store.transition(r.id, { from: ["running", "failed"], to: "succeeded", at: Date.now(), attempt: 1 })).toMatchObject({
      kind: "ok",
      from: "failed",
    });
    expect(await store.transition(r.id, { from: ["running", "failed"], to: "succeeded", at: Date.now(), attempt: 7 })).toEqual({
      kind: "conflict",
      state: "succeeded",
    });
  });

  it("counts records per state, and finished tasks per minute of the last hour by outcome", async () => {
    const now = Date.now();
    // A minute in the previous hour and this one, so both hourly hashes are read.
    const earlier = now - 59 * 60_000;
    const [countsBefore, minutesBefore] = await Promise.all([store.countByState(), store.perMinute(now)]);
    const [ok, bad, waiting] = [record(), record(), record({ state: "scheduled" })];
    await store.createMany([ok, bad, waiting], ["", "", ""]);
    for (const r of [ok, bad]) await store.claim(r, `msg_${r.id}`, Date.now(), 60_000);
    await store.transition(ok.id, { from: ["running"], to: "succeeded", at: earlier, attempt: 1 });
    await store.transition(bad.id, { from: ["running"], to: "failed", at: now, attempt: 1 });
    // Cancellations are not throughput.
    await store.transition(waiting.id, { from: ["scheduled"], to: "cancelled", at: now });
    const counts = await store.countByState();
    expect(counts).toMatchObject({
      succeeded: countsBefore.succeeded + 1,
      failed: countsBefore.failed + 1,
      cancelled: countsBefore.cancelled + 1,
      running: countsBefore.running,
    });
    const minutes = await store.perMinute(now);
    expect(minutes).toHaveLength(60);
    expect(minutes[0]!.at).toBe(Math.floor(earlier / 60_000) * 60_000);
    expect(minutes.at(-1)!.at).toBe(Math.floor(now / 60_000) * 60_000);
    const delta = minutes.map((m, i) => [m.succeeded - minutesBefore[i]!.succeeded, m.failed - minutesBefore[i]!.failed]);
    expect(delta[0]).toEqual([1, 0]);
    expect(delta.at(-1)).toEqual([0, 1]);
    expect(
      delta
        .slice(1, -1)
        .flat()
        .every((n) => n === 0),
    ).toBe(true);
  });

  it("drops expired records from the indexes as new tasks arrive", async () => {
    const r = record({ options: { retries: 0, timeout: 1, resultTtl: 1 } });
    await store.createMany([r], [""]);
    await store.claim(r, "msg_3", Date.now(), 60_000);
    await store.transition(r.id, { from: ["running"], to: "succeeded", at: Date.now(), attempt: 1 }, 1);
    expect(await members("i:all")).toContain(r.id);
    await new Promise((res) => setTimeout(res, 2_100));
    await store.createMany([record()], [""]);
    expect(await store.get(r.id)).toBeNull();
    for (const idx of ["i:all", "i:task:probe", "i:state:succeeded", "i:task:probe:state:succeeded"])
      expect(await members(idx)).not.toContain(r.id);
    expect((await members("expiry")).some((m) => m.startsWith(r.id))).toBe(false);
  });
});

describe("a task's kv", () => {
  it("keeps each task's keys apart, with the TTL asked for, and deletes", async () => {
    const a = taskKv(store, "task-a");
    const b = taskKv(store, "task-b");
    await a.set("report:1", { n: 1 }, { ttl: 120 });
    await b.set("report:1", { n: 2 });
    expect(await a.get("report:1")).toEqual({ n: 1 });
    expect(await b.get("report:1")).toEqual({ n: 2 });
    const ttl = await store.redis.ttl(`${prefix}kv:task-a:report:1`);
    expect(ttl).toBeGreaterThan(100);
    expect(ttl).toBeLessThanOrEqual(120);
    expect(await store.redis.ttl(`${prefix}kv:task-b:report:1`)).toBeGreaterThan(6 * 86_400);
    await a.delete("report:1");
    expect(await a.get("report:1")).toBeUndefined();
    expect(await b.get("report:1")).toEqual({ n: 2 });
    await expect(a.set("x", 1, { ttl: 0 })).rejects.toThrow(/ttl/);
    await expect(a.get("")).rejects.toThrow(TypeError);
  });
});
