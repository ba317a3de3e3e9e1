import { Hono } from "hono";
import { ConfigError, type Env } from "../src/env.ts";
import { messageOf } from "../src/errors.ts";
import { relayFor, taskProblems, type Relay, type Wiring } from "../src/relay.ts";

/** Redis must answer a PING within this long for the relay to count as healthy (ms). */
const PING_TIMEOUT_MS = 2_000;

/**
 * `GET /healthz`: 503 when the core's configuration is bad or Redis does not answer. A task whose
 * own variables are missing only degrades the relay (the other tasks keep working): 200 with
 * `degraded: true` and `checks.tasks.problems` naming each variable with its task.
 */
export const health = (wiring: Wiring) =>
  new Hono<{ Bindings: Env }>().get("/healthz", async (c) => {
    let relay: Relay;
    try {
      relay = relayFor(wiring, c.env ?? {});
    } catch (err) {
      const problems = err instanceof ConfigError ? err.problems : [messageOf(err)];
      return c.json({ ok: false, checks: { config: { ok: false, problems } } }, 503);
    }
    const started = Date.now();
    const redis = await Promise.race([
      relay.services.redis.ping().then(
        (reply) => ({ ok: reply === "PONG", ...(reply === "PONG" ? {} : { problem: `unexpected reply ${reply}` }) }),
        (err: unknown) => ({ ok: false, problem: messageOf(err) }),
      ),
      new Promise<{ ok: false; problem: string }>((resolve) =>
        setTimeout(() => resolve({ ok: false, problem: `no answer within ${PING_TIMEOUT_MS} ms` }), PING_TIMEOUT_MS),
      ),
    ]);
    const problems = taskProblems(relay);
    const tasks = problems.length ? { ok: false, problems } : { ok: true };
    return c.json(
      {
        ok: redis.ok,
        ...(problems.length ? { degraded: true } : {}),
        checks: { config: { ok: true }, tasks, redis: { ...redis, latencyMs: Date.now() - started } },
      },
      redis.ok ? 200 : 503,
    );
  });
