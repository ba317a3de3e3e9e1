import type { MiddlewareHandler } from "hono";
import { ApiError, messageOf } from "./errors.ts";
import type { AppEnv } from "./relay.ts";

const encoder = new TextEncoder();
const digest = async (s: string) => new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(s)));

/** Compares two digests without an early exit, so timing does not reveal a matching prefix. */
function same(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ (b[i] ?? 0);
  return diff === 0;
}

/**
 * Requires `Authorization: Bearer <key>` naming one of CELERIAC_API_KEYS: 401 when absent,
 * 403 when wrong. Every configured key is compared (digest against digest), match or not.
 */
export const requireApiKey: MiddlewareHandler<AppEnv> = async (c, next) => {
  const header = c.req.header("authorization") ?? "";
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!m) {
    throw new ApiError(401, { code: "missing_api_key", message: "send an API key as `Authorization: Bearer <key>`" });
  }
  const presented = await digest(m[1]!);
  let name: string | undefined;
  for (const k of c.get("relay").config.apiKeys) {
    if (same(presented, await digest(k.key)) && name === undefined) name = k.name;
  }
  if (name === undefined) throw new ApiError(403, { code: "invalid_api_key", message: "the API key is not valid" });
  c.set("apiKey", name);
  await next();
};

/**
 * Requires QStash's signature over the raw body, `sub` included (checked against the configured
 * public URL, not the URL this request happened to arrive at). The verified body is `c.var.body`;
 * anything else is a 401 and nothing happens.
 */
export const requireQstashSignature: MiddlewareHandler<AppEnv> = async (c, next) => {
  const relay = c.get("relay");
  const signature = c.req.header("upstash-signature");
  const body = await c.req.text();
  const url = new URL(c.req.url);
  if (signature) {
    try {
      await relay.services.receiver.verify({ signature, body, url: relay.config.publicUrl + url.pathname + url.search });
      c.set("body", body);
      return next();
    } catch (err) {
      console.warn(`[celeriac] rejected a delivery to ${url.pathname}: ${messageOf(err)}`);
    }
  }
  throw new ApiError(401, { code: "invalid_signature", message: "not signed by QStash with the configured keys" });
};
