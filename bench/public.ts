/**
 * Browser callers: the answer time of a public enqueue (`POST /v1/public/verification`: CORS,
 * body and payload checks, the IP's rate limit, then the recipient's and the task's in a second
 * Redis request, enqueue, a signed receipt)
 * beside the API-key enqueue of the same task and payload (`POST /v1/tasks/verification`), in
 * workerd, alternating. Each public call comes from its own address (wrangler dev passes
 * CF-Connecting-IP through) for its own recipient, so no limit refuses it; the count stays under
 * the task's overall limit.
 *   node bench/public.ts [--quick] [--json out.json]
 */
import { DEV_API_KEY } from "../dev/stack.ts";
import { DEFAULT_LIMITS } from "../src/rate-limit.ts";
import {
  benchRedis,
  benchRedisUrl,
  benchStack,
  checkBenchDb,
  deleteKeys,
  emit,
  ms,
  note,
  QUICK,
  quietly,
  ratio,
  summary,
  table,
} from "./lib.ts";

/** Under the verification task's overall limit per window (the limit would refuse the rest). */
const ITERATIONS = Math.min(QUICK ? 100 : 250, DEFAULT_LIMITS.task.requests - 40);
const WARMUP = 15;

process.env.REDIS_URL = benchRedisUrl();
const raw = benchRedis();
await checkBenchDb(raw, ["celeriac:"]);
await deleteKeys(raw, "celeriac:*");
const stack = await benchStack();
try {
  const origin = stack.site.url;
  let n = 0;
  const payload = () => ({ email: `bench-${n}@celeriac.dev`, purpose: "bench" });
  const ip = () => `198.18.${(n >> 8) & 255}.${n & 255}`;
  const publicCall = async () => {
    const r = await fetch(`${stack.worker.url}/v1/public/verification`, {
      method: "POST",
      headers: { origin, "content-type": "application/json", "cf-connecting-ip": ip() },
      body: JSON.stringify(payload()),
    });
    await r.arrayBuffer();
    if (r.status !== 202) throw new Error(`[celeriac] bench: public enqueue answered ${r.status}`);
  };
  const keyCall = async () => {
    const r = await fetch(`${stack.worker.url}/v1/tasks/verification`, {
      method: "POST",
      headers: { authorization: `Bearer ${DEV_API_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ payload: payload() }),
    });
    await r.arrayBuffer();
    if (r.status !== 202) throw new Error(`[celeriac] bench: API-key enqueue answered ${r.status}`);
  };
  const ways = { apiKey: keyCall, public: publicCall };
  const lat: Record<keyof typeof ways, number[]> = { apiKey: [], public: [] };
  note(`public: ${WARMUP} warm-up and ${ITERATIONS} measured calls each way, alternating`);
  await quietly(async () => {
    for (let i = 0; i < WARMUP; i++, n++) for (const f of Object.values(ways)) await f();
    const names = Object.keys(ways) as (keyof typeof ways)[];
    for (let i = 0; i < ITERATIONS; i++, n++) {
      for (let j = 0; j < names.length; j++) {
        const name = names[(i + j) % names.length]!;
        const s = performance.now();
        await ways[name]();
        lat[name].push(performance.now() - s);
      }
    }
  });
  const a = summary(lat.apiKey);
  const p = summary(lat.public);
  const markdown = `## 6. Browser callers: the public enqueue

Answer time of \`POST /v1/public/verification\` (no key: CORS, checks, the three rate limits,
enqueue, a signed receipt) beside \`POST /v1/tasks/verification\` with an API key, same task and payloads,
the Worker in workerd under \`wrangler dev\` (a dev-runtime figure), ${ITERATIONS} calls each,
alternating, one at a time. Neither can be delayed like the other benches' tasks (a public call
takes no options), so every call's delivery, a code mailed to the sink, runs in the same workerd
alongside: both columns carry that load alike.

${table(
  ["enqueue", "p50", "p99", "max", "p50 vs API key"],
  [
    ["API key", ms(a.p50), ms(a.p99), ms(a.max), "1×"],
    ["public (limits + receipt)", ms(p.p50), ms(p.p99), ms(p.max), ratio(p.p50, a.p50)],
  ],
)}

The three limits of one call are checked and counted by one Lua script in one Redis request (with a
bot check on, two: the caller's IP limit before Turnstile, the other two after it); that request,
plus HMAC for the receipt, is what the public path adds.
`;
  await emit({ id: "public", title: "5. Browser callers", markdown, data: { apiKey: a, public: p } });
} finally {
  await stack.close();
  await deleteKeys(raw, "celeriac:*");
  raw.disconnect();
}
