import { Hono } from "hono";
import { ConfigError, loadConfig, type Env } from "../src/env.ts";
import { messageOf } from "../src/errors.ts";
import { servicesFor } from "../src/services.ts";

/** Redis must answer a PING within this long for the relay to count as healthy (ms). */
const PING_TIMEOUT_MS = 2_000;

/** `GET /healthz`: 200 when the configuration parses and Redis answers, else 503 with reasons. */
export const health = new Hono<{ Bindings: Env }>().get("/healthz", async (c) => {
  let config;
  try {
    config = loadConfig(c.env ?? {});
  } catch (err) {
    const problems = err instanceof ConfigError ? err.problems : [messageOf(err)];
    return c.json({ ok: false, checks: { config: { ok: false, problems } } }, 503);
  }
  const started = Date.now();
  const redis = await Promise.race([
    servicesFor(config).redis.ping().then(
      (reply) => ({ ok: reply === "PONG", ...(reply === "PONG" ? {} : { problem: `unexpected reply ${reply}` }) }),
      (err: unknown) => ({ ok: false, problem: messageOf(err) }),
    ),
    new Promise<{ ok: false; problem: string }>((resolve) =>
      setTimeout(() => resolve({ ok: false, problem: `no answer within ${PING_TIMEOUT_MS} ms` }), PING_TIMEOUT_MS),
    ),
  ]);
  const ok = redis.ok;
  return c.json(
    { ok, checks: { config: { ok: true }, redis: { ...redis, latencyMs: Date.now() - started } } },
    ok ? 200 : 503,
  );
});
