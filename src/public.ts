import type { Context } from "hono";
import { clientIp } from "./client-ip.ts";
import { enqueuePublic } from "./enqueue.ts";
import { ConfigError } from "./env.ts";
import { ApiError, messageOf } from "./errors.ts";
import { readJson } from "./http.ts";
import { loadPublicConfig, type PublicConfig } from "./public-config.ts";
import { enforceLimits, type PublicLimits } from "./rate-limit.ts";
import { makeReceipt } from "./receipt.ts";
import type { AppEnv } from "./relay.ts";
import type { TaskDefinition } from "./task.ts";
import { TURNSTILE_HEADER, verifyTurnstile } from "./turnstile.ts";

/** Largest body a public route reads, bytes: a form's worth, far below the API's 1 MB. */
export const MAX_PUBLIC_BODY_BYTES = 4 * 1024;

/** The public task named `name`, or a 404 that says no more than that. */
export function publicTask(c: Context<AppEnv>, name: string): TaskDefinition & { public: NonNullable<TaskDefinition["public"]> } {
  const def = c.get("relay").registry.get(name);
  if (!def?.public) throw new ApiError(404, { code: "unknown_task", message: `no public task named "${name}"` });
  return def as ReturnType<typeof publicTask>;
}

/** The public routes' configuration; a bad one is a 503 naming each variable. */
export function publicConfig(c: Context<AppEnv>): PublicConfig {
  try {
    return loadPublicConfig(c.env ?? {});
  } catch (err) {
    const problems = err instanceof ConfigError ? err.problems : [messageOf(err)];
    throw new ApiError(503, { code: "misconfigured", message: `[celeriac] the public routes are misconfigured: ${problems.join("; ")}` });
  }
}

/** The origins allowed to call a public task: its own, else the global list. */
export const originsOf = (c: Context<AppEnv>, def: TaskDefinition) => def.public?.origins ?? publicConfig(c).origins;

/**
 * A browser's call of a public task, checked in the order that costs least for a refusal:
 * body (415/413/400), payload (422), the limits (429: the IP's, the recipient's and the task's in
 * one Redis round trip; with a bot check, the IP's, then the check (403), then the other two);
 * only then one enqueue. A refused call enqueues nothing and stores nothing beyond, with a bot
 * check, its count against its own IP. Answers 202 with a receipt.
 */
export async function callPublicTask(c: Context<AppEnv>, def: ReturnType<typeof publicTask>) {
  const relay = c.get("relay");
  const pub = publicConfig(c);
  const payload = await readJson(c, MAX_PUBLIC_BODY_BYTES);
  const ip = clientIp(c.req.raw, pub.trustedIpHeader);
  let limited: { headers: Record<string, string> } = { headers: {} };
  const e = await enqueuePublic(relay, def.name, payload, async (output) => {
    const field = def.public.recipient;
    const recipient = field ? (output as Record<string, unknown>)[field] : undefined;
    const who = { ip, ...(typeof recipient === "string" ? { recipient } : {}) };
    const limits = def.public.limits ?? {};
    const count = (l: PublicLimits) => enforceLimits(relay.services.redis, relay.store.prefix, def.name, l, who);
    if (!(def.public.turnstile && pub.turnstile.secret)) {
      // All limits in one round trip: a call over any of them counts against none.
      limited = await count(limits);
      return;
    }
    // With a bot check, the caller's own IP counter comes first, alone: it keeps one address from
    // flooding siteverify. The check then comes before the recipient's and the task's counters,
    // so a caller without a valid token cannot use up an address's (or everyone's) allowance.
    limited = await count({ ip: limits.ip, recipient: false, task: false });
    await verifyTurnstile({ secret: pub.turnstile.secret, url: pub.turnstile.url, token: c.req.header(TURNSTILE_HEADER), ip });
    await count({ ...limits, ip: false });
  });
  const expiresAt = Date.parse(e.runAt) + def.resultTtl * 1000;
  for (const [k, v] of Object.entries(limited.headers)) c.header(k, v);
  return c.json({ receipt: await makeReceipt(pub.receiptSecret, e.id, def.name, expiresAt), state: e.state }, 202);
}
