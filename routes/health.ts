import { Hono } from "hono";
import { type Config, ConfigError, type Env } from "../src/env.ts";
import { messageOf } from "../src/errors.ts";
import { publicProblems } from "../src/public-config.ts";
import { type Relay, relayFor, taskProblems, type Wiring } from "../src/relay.ts";

/** Each dependency must answer within this long for the relay to count as healthy (ms). */
const CHECK_TIMEOUT_MS = 2_000;
/**
 * A healthy answer is reused for this long (ms). `/healthz` is public, and each probe costs an
 * authenticated QStash call: without it, anyone could make the relay spend QStash requests.
 */
const HEALTHY_REUSE_MS = 5_000;

interface Check {
  ok: boolean;
  latencyMs: number;
  problem?: string;
}

/** Runs `probe` with a time bound; a failure or no answer within the bound is a problem. */
async function bounded(probe: () => Promise<string | undefined>): Promise<Check> {
  const started = Date.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const problem = await Promise.race([
    probe().catch((err: unknown) => messageOf(err)),
    new Promise<string>((resolve) => (timer = setTimeout(() => resolve(`no answer within ${CHECK_TIMEOUT_MS} ms`), CHECK_TIMEOUT_MS))),
  ]);
  if (timer !== undefined) clearTimeout(timer);
  return { ok: problem === undefined, latencyMs: Date.now() - started, ...(problem === undefined ? {} : { problem }) };
}

const redisCheck = (relay: Relay) =>
  bounded(async () => {
    const reply = await relay.services.redis.ping();
    return reply === "PONG" ? undefined : `unexpected reply ${reply}`;
  });

// GET /v2/keys is QStash's cheapest authenticated call (the local broker has it too); a wrong
// token answers 401 here, as every publish would.
const qstashCheck = (config: Config) =>
  bounded(async () => {
    const r = await fetch(`${config.qstash.url}/v2/keys`, {
      headers: { authorization: `Bearer ${config.qstash.token}` },
      signal: AbortSignal.timeout(CHECK_TIMEOUT_MS),
    });
    await r.body?.cancel();
    if (r.ok) return undefined;
    return r.status === 401 || r.status === 403 ? `QSTASH_TOKEN was refused (${r.status})` : `answered ${r.status}`;
  });

type Probes = { redis: Check; qstash: Check };
// Per relay (one per isolate and configuration): the last healthy probes, or the ones under way,
// which concurrent requests share.
const recent = new WeakMap<Relay, { at: number; probes: Promise<Probes> }>();

function probe(relay: Relay): Promise<Probes> {
  const hit = recent.get(relay);
  if (hit && Date.now() - hit.at < HEALTHY_REUSE_MS) return hit.probes;
  const probes = Promise.all([redisCheck(relay), qstashCheck(relay.config)]).then(([redis, qstash]) => {
    // Only a healthy answer is kept: a dependency that comes back is seen at the next request.
    if (!(redis.ok && qstash.ok)) recent.delete(relay);
    return { redis, qstash };
  });
  recent.set(relay, { at: Date.now(), probes });
  return probes;
}

/**
 * `GET /healthz`: 503 when the core's configuration is bad, or Redis or QStash does not answer
 * (checked in parallel, each within 2 s; a healthy answer is reused for 5 s); `down` names what failed and each check says why. A
 * task whose own variables are missing only degrades the relay (the other tasks keep working):
 * 200 with `degraded: true` and `checks.tasks.problems` naming each variable with its task; so
 * does a bad variable of the browsers' routes (`checks.public`), which only those routes need.
 */
export const health = (wiring: Wiring) =>
  new Hono<{ Bindings: Env }>().get("/healthz", async (c) => {
    let relay: Relay;
    try {
      relay = relayFor(wiring, c.env ?? {});
    } catch (err) {
      const problems = err instanceof ConfigError ? err.problems : [messageOf(err)];
      return c.json({ ok: false, down: ["config"], checks: { config: { ok: false, problems } } }, 503);
    }
    const { redis, qstash } = await probe(relay);
    const down = Object.entries({ redis, qstash }).flatMap(([name, check]) => (check.ok ? [] : [name]));
    const problems = taskProblems(relay);
    const tasks = problems.length ? { ok: false, problems } : { ok: true };
    const ok = down.length === 0;
    // The browsers' routes need variables of their own only when some task is public.
    const pub = relay.registry.all().some((t) => t.public) ? publicProblems(c.env ?? {}) : [];
    return c.json(
      {
        ok,
        ...(ok ? {} : { down }),
        ...(problems.length || pub.length ? { degraded: true } : {}),
        checks: { config: { ok: true }, tasks, ...(pub.length ? { public: { ok: false, problems: pub } } : {}), redis, qstash },
      },
      ok ? 200 : 503,
    );
  });
