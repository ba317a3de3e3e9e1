import type { MiddlewareHandler } from "hono";
import { ApiError } from "./errors.ts";
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
    throw new ApiError(401, "missing_api_key", "send an API key as `Authorization: Bearer <key>`");
  }
  const presented = await digest(m[1]!);
  let name: string | undefined;
  for (const k of c.get("relay").config.apiKeys) {
    if (same(presented, await digest(k.key)) && name === undefined) name = k.name;
  }
  if (name === undefined) throw new ApiError(403, "invalid_api_key", "the API key is not valid");
  c.set("apiKey", name);
  await next();
};
