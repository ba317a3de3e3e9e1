/**
 * How cost grows: status read, list pages and the day's statistics at 10,000 and 100,000 task
 * records; Redis memory per finished task; and records expiring after resultTtl.
 *   node bench/growth.ts [--quick] [--json out.json]
 * Writes under a unique key prefix in the bench's Redis database and deletes it afterwards.
 */
import { Redis } from "@upstash/redis/cloudflare";
import { startRedisBridge } from "../dev/redis-bridge.ts";
import { newTaskId } from "../src/ids.ts";
import { dayReport } from "../src/stats.ts";
import { type NewRecord, TaskStore, utcDay } from "../src/store/index.ts";
import type { TaskState } from "../src/store/record.ts";
import {
  BENCH_DB,
  benchRedis,
  benchRedisUrl,
  bytes,
  checkBenchDb,
  deleteKeys,
  emit,
  int,
  median,
  ms,
  note,
  pool,
  QUICK,
  ratio,
  type SectionResult,
  sleep,
  summary,
  table,
} from "./lib.ts";

const SIZES = QUICK ? [2_000, 20_000] : [10_000, 100_000];
const READS = QUICK ? 100 : 300;
const SEED_CHUNK = 500;
const LIFECYCLE = QUICK ? 500 : 2_000;
const EXPIRING = QUICK ? 500 : 2_000;
const EXPIRE_TTL_S = 2;
const options = { retries: 5, timeout: 30, resultTtl: 604_800 };
const payload = (i: number) => ({
  url: `https://hooks.example.com/orders/${i}`,
  method: "POST",
  body: { json: { order: i, status: "placed" } },
});
const result = { status: 200, headers: { "content-type": "text/plain" }, body: "sent" };

/** The same client options as src/services.ts. */
function upstash(url: string, token: string) {
  return new Redis({
    url,
    token,
    retry: false,
    enableTelemetry: false,
    enableAutoPipelining: false,
    automaticDeserialization: false,
    responseEncoding: false,
  });
}

/** A spread of tasks and final states like a live store's: mostly succeeded, some failed, a few queued. */
function stateOf(i: number): TaskState {
  const r = i % 50;
  return r < 4 ? "failed" : r === 4 ? "queued" : "succeeded";
}

async function seed(store: TaskStore, from: number, to: number, base: number): Promise<string[]> {
  const ids: string[] = [];
  const chunks = Math.ceil((to - from) / SEED_CHUNK);
  await pool(chunks, 4, async (c) => {
    const recs: NewRecord[] = [];
    for (let i = from + c * SEED_CHUNK; i < Math.min(to, from + (c + 1) * SEED_CHUNK); i++) {
      const createdAt = base + i * 10;
      const id = newTaskId(createdAt);
      ids.push(id);
      recs.push({
        id,
        task: i % 2 ? "webhook" : "send-email",
        state: stateOf(i),
        payload: payload(i),
        options,
        createdAt,
        runAt: createdAt,
      });
    }
    await store.createMany(
      recs,
      recs.map(() => ""),
    );
  });
  return ids;
}

type Op = "get" | "list" | "listState" | "listTask" | "listTaskState" | "stats";
const OPS: Record<Op, string> = {
  get: "status read, `store.get(id)` (record + history)",
  list: "list page, 20 newest, no filter",
  listState: "list page, 20, `state=failed` (8 % of tasks)",
  listTask: "list page, 20, `task=webhook`",
  listTaskState: "list page, 20, `task=webhook&state=failed`",
  stats: "day's statistics, `dayReport`",
};

/**
 * Reads from every store side by side: each round runs each kind of read once per store,
 * alternating which store goes first, so the sizes meet the same machine noise.
 */
async function reads(stores: { store: TaskStore; ids: string[] }[], day: string) {
  const lat = stores.map(() => Object.fromEntries(Object.keys(OPS).map((k) => [k, [] as number[]])) as Record<Op, number[]>);
  const run = (store: TaskStore, ids: string[]): Record<Op, () => Promise<unknown>> => ({
    get: () => store.get(ids[Math.floor(Math.random() * ids.length)]!),
    list: () => store.list({ limit: 20 }),
    listState: () => store.list({ limit: 20, state: "failed" }),
    listTask: () => store.list({ limit: 20, task: "webhook" }),
    listTaskState: () => store.list({ limit: 20, task: "webhook", state: "failed" }),
    stats: () => dayReport(store, day),
  });
  const runs = stores.map((s) => run(s.store, s.ids));
  for (const r of runs) for (const f of Object.values(r)) for (let i = 0; i < 20; i++) await f(); // warm-up
  const ops = Object.keys(OPS) as Op[];
  for (let i = 0; i < READS; i++) {
    for (let j = 0; j < ops.length; j++) {
      const op = ops[(i + j) % ops.length]!;
      for (let k = 0; k < runs.length; k++) {
        const which = (i + k) % runs.length;
        const s = performance.now();
        const r = await runs[which]![op]();
        lat[which]![op].push(performance.now() - s);
        if (op === "get" && !r) throw new Error("[celeriac] bench: a seeded record was not found");
        if (op.startsWith("list") && (r as { tasks: unknown[] }).tasks.length !== 20)
          throw new Error(`[celeriac] bench: ${op} returned a short page`);
      }
    }
  }
  return lat.map((l) => Object.fromEntries(ops.map((op) => [op, summary(l[op])])) as Record<Op, ReturnType<typeof summary>>);
}

async function usedMemory(raw: ReturnType<typeof benchRedis>): Promise<number> {
  const info = await raw.info("memory");
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? NaN);
}

/** Full lifecycle (create → claim → succeeded with a result), like a delivered webhook task. */
async function lifecycle(store: TaskStore, count: number, ttl: number, skipClaim = false): Promise<string[]> {
  const ids: string[] = [];
  const now = Date.now();
  const recs: NewRecord[] = Array.from({ length: count }, (_, i) => {
    const id = newTaskId(now + i);
    ids.push(id);
    return {
      id,
      task: "webhook",
      state: "queued",
      payload: payload(i),
      options: { ...options, resultTtl: ttl },
      createdAt: now + i,
      runAt: now + i,
    };
  });
  for (let c = 0; c < count; c += SEED_CHUNK)
    await store.createMany(
      recs.slice(c, c + SEED_CHUNK),
      recs.slice(c, c + SEED_CHUNK).map(() => ""),
    );
  await pool(count, 20, async (i) => {
    const r = recs[i]!;
    if (!skipClaim) await store.claim(r, `msg_${i}`, Date.now(), 45_000);
    const t = await store.transition(
      r.id,
      {
        from: skipClaim ? ["queued"] : ["running"],
        to: "succeeded",
        at: Date.now(),
        ...(skipClaim ? {} : { attempt: 1 }),
        fields: { result: JSON.stringify(result) },
      },
      ttl,
    );
    if (t.kind !== "ok") throw new Error(`[celeriac] bench: transition ${t.kind}`);
  });
  return ids;
}

export async function runGrowth(): Promise<SectionResult> {
  const started = performance.now();
  const raw = benchRedis();
  await checkBenchDb(raw, ["celeriac:", "bull:celeriac-bench-"]);
  const bridge = await startRedisBridge({ port: 0, backend: "redis", redisUrl: benchRedisUrl() });
  const prefix = `celeriac:bench-${process.pid}-${Date.now().toString(36)}:`;
  const redis = upstash(bridge.url, bridge.token);
  const _store = new TaskStore(redis, prefix);
  try {
    // --- Latency at two sizes --------------------------------------------------------------
    const base = Date.now() - SIZES.at(-1)! * 10;
    const day = utcDay(Date.now());
    // One store per size, under prefixes of their own, read side by side.
    const sized: { size: number; seedMs: number; store: TaskStore; ids: string[] }[] = [];
    for (const size of SIZES) {
      note(`growth: seeding ${int(size)} records`);
      const sized_ = new TaskStore(redis, `${prefix}n${size}:`);
      const s = performance.now();
      const ids = await seed(sized_, 0, size, base);
      sized.push({ size, seedMs: performance.now() - s, store: sized_, ids });
    }
    note(`growth: reads at ${SIZES.map(int).join(" and ")} records, side by side`);
    const results = await reads(sized, day);
    const atSize = sized.map((z, i) => ({ size: z.size, seedMs: z.seedMs, r: results[i]! }));
    const zcard = await raw.zcard(`${prefix}n${SIZES.at(-1)}:i:all`);
    // Drop the seeded records before the memory and expiry runs, so those start from a quiet db.
    await deleteKeys(raw, `${prefix}*`);

    // --- Memory per finished task ------------------------------------------------------------
    note(`growth: memory of ${int(LIFECYCLE)} finished tasks`);
    const mp = `${prefix}mem:`;
    const memStore = new TaskStore(redis, mp);
    await sleep(200);
    const before = await usedMemory(raw);
    const memIds = await lifecycle(memStore, LIFECYCLE, options.resultTtl);
    const after = await usedMemory(raw);
    const usage = async (key: string) => Number((await raw.call("MEMORY", "USAGE", key, "SAMPLES", "0")) ?? 0);
    const sample = memIds.filter((_, i) => i % Math.max(1, Math.floor(LIFECYCLE / 50)) === 0);
    let recBytes = 0;
    let histBytes = 0;
    for (const id of sample) {
      recBytes += await usage(`${mp}t:${id}`);
      histBytes += await usage(`${mp}t:${id}:h`);
    }
    recBytes /= sample.length;
    histBytes /= sample.length;
    const indexKeys = [`${mp}i:all`, `${mp}i:task:webhook`, `${mp}i:state:succeeded`, `${mp}i:task:webhook:state:succeeded`, `${mp}expiry`];
    let indexBytes = 0;
    for (const k of indexKeys) indexBytes += await usage(k);
    const statsBytes = await usage(`${mp}stats:${day}`);
    const indexEntries = (await Promise.all(indexKeys.map((k) => raw.zcard(k)))).reduce((a, b) => a + b, 0);

    // --- Expiry after resultTtl ---------------------------------------------------------------
    note(`growth: ${int(EXPIRING)} tasks finished with resultTtl ${EXPIRE_TTL_S} s`);
    const ep = `${prefix}ttl:`;
    const ttlStore = new TaskStore(redis, ep);
    const ttlIds = await lifecycle(ttlStore, EXPIRING, EXPIRE_TTL_S, true);
    const finishedAt = performance.now();
    // Keys Redis holds in the bench db (INFO keyspace counts them without touching, so no lazy expiry).
    const dbKeys = async () => Number(new RegExp(`db${BENCH_DB}:keys=(\\d+)`).exec(await raw.info("keyspace"))?.[1] ?? 0);
    const keysBefore = ttlIds.length * 2;
    const baseline = (await dbKeys()) - keysBefore;
    const expiredStat = async () => Number(/expired_keys:(\d+)/.exec(await raw.info("stats"))?.[1] ?? NaN);
    const expiredBefore = await expiredStat();
    // Wait for Redis' active expiry (no reads of those keys meanwhile), bounded.
    let keysLeft = keysBefore;
    let waitedMs = 0;
    for (let i = 0; i < 60 && keysLeft > 0; i++) {
      await sleep(500);
      keysLeft = Math.max(0, (await dbKeys()) - baseline);
      waitedMs = performance.now() - finishedAt;
    }
    const liveKeys = async () => {
      let n = 0;
      for (const id of ttlIds) n += await raw.exists(`${ep}t:${id}`, `${ep}t:${id}:h`);
      return n;
    };
    const expiredDuring = (await expiredStat()) - expiredBefore;
    const stillThere = await liveKeys();
    const ttlIndexKeys = [`${ep}i:all`, `${ep}i:task:webhook`, `${ep}i:state:succeeded`, `${ep}i:task:webhook:state:succeeded`];
    const zc = async () => Promise.all(ttlIndexKeys.map((k) => raw.zcard(k)));
    const lingering = await zc();
    let lingeringBytes = 0;
    for (const k of ttlIndexKeys) lingeringBytes += await usage(k);
    // Every new task's CREATE removes up to 20 expired records' entries from the indexes: count the
    // enqueues it takes until none of the expired tasks is indexed any more, and time them.
    const arriving: number[] = [];
    const expiredIndexed = async () => {
      let n = 0;
      for (const k of [...ttlIndexKeys, `${ep}expiry`]) n += (await raw.zcard(k)) ?? 0;
      return n - arriving.length * 2; // each arriving task adds itself to i:all and expiry
    };
    const indexedAtStart = await expiredIndexed();
    while ((await expiredIndexed()) > 0 && arriving.length < EXPIRING) {
      const now = Date.now();
      const t = performance.now();
      await ttlStore.createMany(
        [{ id: newTaskId(now), task: "probe", state: "queued", payload: payload(arriving.length), options, createdAt: now, runAt: now }],
        [""],
      );
      arriving.push(performance.now() - t);
    }
    const indexedAfterArrivals = await expiredIndexed();
    const t1 = performance.now();
    const page = await ttlStore.list({ limit: 20 });
    const pruneMs = performance.now() - t1;
    const afterList = await zc();
    const t2 = performance.now();
    await ttlStore.list({ limit: 20, state: "succeeded" });
    const pruneStateMs = performance.now() - t2;
    const afterStateList = await zc();
    const t3 = performance.now();
    await ttlStore.list({ limit: 20 });
    const emptyListMs = performance.now() - t3;

    // The same pruning with ten times the dead entries: its cost is one Lua call, blocking Redis.
    const manyDead = EXPIRING * 10;
    note(`growth: ${int(manyDead)} more tasks expiring, to time the pruning list`);
    const dp = `${prefix}ttl10:`;
    const deadStore = new TaskStore(redis, dp);
    await lifecycle(deadStore, manyDead, EXPIRE_TTL_S, true);
    await sleep(EXPIRE_TTL_S * 1000 + 1000);
    const t4 = performance.now();
    await deadStore.list({ limit: 20 });
    const pruneManyMs = performance.now() - t4;
    const seconds = (performance.now() - started) / 1000;
    const [small, big] = atSize as [(typeof atSize)[number], (typeof atSize)[number]];
    const perTask = recBytes + histBytes + indexBytes / LIFECYCLE;
    const markdown = `## 5. How cost grows

A \`TaskStore\` (src/store) over the Upstash-REST bridge and the real Redis (db ${BENCH_DB}), under a
unique key prefix that is deleted afterwards; the client is configured as in src/services.ts, so
each call below is one HTTP round trip to the bridge as in production (loopback instead of a
network). Records are seeded with the store's own create path (\`createMany\`, pipelines of ${SEED_CHUNK}):
half \`webhook\`, half \`send-email\`; 90 % succeeded, 8 % failed, 2 % queued; one creation time
per 10 ms. One store per size, each under its own key prefix in the same Redis; ${READS} reads of
each kind per size, the sizes interleaved read by read (alternating which goes first), after warm-up.

${table(
  ["read", `p50 at ${int(small.size)}`, `p99 at ${int(small.size)}`, `p50 at ${int(big.size)}`, `p99 at ${int(big.size)}`, "p50 ratio"],
  (Object.keys(OPS) as Op[]).map((op) => [
    OPS[op],
    ms(small.r[op].p50),
    ms(small.r[op].p99),
    ms(big.r[op].p50),
    ms(big.r[op].p99),
    ratio(big.r[op].p50, small.r[op].p50),
  ]),
)}

Seeding took ${ms(small.seedMs)} for ${int(small.size)} records and ${ms(big.seedMs)} for ${int(big.size)} (the larger \`i:all\` held ${int(zcard)} entries).

### Redis memory per finished task

${int(LIFECYCLE)} \`webhook\` tasks through the real lifecycle (\`createMany\` → \`claim\` → \`transition\` to
succeeded with a small result, like a delivered webhook), under their own prefix. \`MEMORY USAGE …
SAMPLES 0\` on ${sample.length} sampled records and on the index sorted sets; \`INFO memory\` \`used_memory\`
before and after for comparison (server-wide: other work on the shared Redis moves it).

${table(
  ["what", "bytes"],
  [
    ["record hash (`t:<id>`)", int(recBytes)],
    ["history list (`t:<id>:h`, 3 entries)", int(histBytes)],
    [
      `index and expiry entries (5 sorted sets, ${int(indexEntries)} entries for ${int(LIFECYCLE)} tasks), per task`,
      int(indexBytes / LIFECYCLE),
    ],
    ["**per finished task** (sum of the above)", `**${int(perTask)}**`],
    ["`used_memory` delta ÷ tasks", int((after - before) / LIFECYCLE)],
    ["per day, whatever the volume: the statistics hash", int(statsBytes)],
  ],
)}

At that size 1 GB holds about ${int(1e9 / perTask)} finished tasks; with the default resultTtl of 7 days
that is about ${int(1e9 / perTask / 7)} tasks a day. Payloads and results are stored as given, so
larger ones cost their own bytes on top.

### Records expire after resultTtl

${int(EXPIRING)} tasks finished with \`resultTtl\` ${EXPIRE_TTL_S} s (\`transition\` sets the TTL on the record and its history).
Then no reads of those keys (so only Redis' active expiry works; \`INFO keyspace\` is polled, which
touches no key), up to 30 s; the seeded records were deleted before this run.

${table(
  ["", "value"],
  [
    ["record + history keys right after finishing", int(keysBefore)],
    [`of them still held by Redis after ${ms(waitedMs)}`, `${int(keysLeft)} (EXISTS on every id afterwards: ${int(stillThere)})`],
    ["`expired_keys` counted by Redis meanwhile (server-wide)", int(expiredDuring)],
    [
      "index entries of the expired tasks still there (i:all, i:task, i:state, i:task:state)",
      `${lingering.map(int).join(", ")} (${bytes(lingeringBytes)})`,
    ],
    ["…with their expiry entries, in all", int(indexedAtStart)],
    [
      "new enqueues until none of them is indexed (each removes up to 20 expired records)",
      `${int(arriving.length)} (left: ${int(indexedAfterArrivals)})`,
    ],
    ["latency of those enqueues' Redis call, p50 / max", `${ms(median(arriving))} / ${ms(Math.max(...arriving))}`],
    ["first `list` (no filter) afterwards: latency, page size", `${ms(pruneMs)}, ${page.tasks.length} tasks`],
    ["index entries after it (i:all holds the new tasks)", afterList.map(int).join(", ")],
    ["first `list?state=succeeded` afterwards: latency", ms(pruneStateMs)],
    ["index entries after it", afterStateList.map(int).join(", ")],
    ["next `list`", ms(emptyListMs)],
    [`first \`list\` over ${int(manyDead)} expired entries, no enqueue in between (a second run)`, ms(pruneManyMs)],
  ],
)}

Records and histories go by themselves, and so do their index entries: a sorted set \`expiry\`
scores every record by when it expires, and each new task's create removes the entries of up to
20 expired records from all the indexes (a bounded amount of work per enqueue, inside the same
Lua call). So the indexes hold about the records alive, plus at most what expired since the
last few enqueues; \`list\` also drops dead entries it walks past. Only when nothing is enqueued
for a long while can a list meet many dead entries at once (last row).

Section wall time: ${seconds.toFixed(0)} s.`;
    return { id: "growth", title: "How cost grows", markdown, data: { atSize, perTask } };
  } finally {
    const removed = await deleteKeys(raw, `${prefix}*`);
    note(`growth: removed ${int(removed)} keys under ${prefix}`);
    raw.disconnect();
    await bridge.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await emit(await runGrowth());
