import type { MiddlewareHandler } from "hono";
import { ApiError, messageOf } from "./errors.ts";
import { same } from "./hmac.ts";
import { MAX_BODY_BYTES, readBytes } from "./http.ts";
import type { AppEnv } from "./relay.ts";
import { bodyText } from "./signature.ts";

const encoder = new TextEncoder();
const digest = async (s: string) => new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(s)));

// The configured keys' digests, once per configuration (per isolate): a request hashes only its own key.
const keyDigests = new WeakMap<object, Promise<{ name: string; digest: Uint8Array }[]>>();
const digestsOf = (keys: { name: string; key: string }[]) => {
  let d = keyDigests.get(keys);
  if (!d) keyDigests.set(keys, (d = Promise.all(keys.map(async (k) => ({ name: k.name, digest: await digest(k.key) })))));
  return d;
};

/**
 * The name of the key `presented` is, or undefined. Every key is compared (digest against digest),
 * match or not, so the time taken does not say which one matched.
 */
export async function keyName(keys: { name: string; key: string }[], presented: string): Promise<string | undefined> {
  const d = await digest(presented);
  let name: string | undefined;
  for (const k of await digestsOf(keys)) if (same(d, k.digest) && name === undefined) name = k.name;
  return name;
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
  const name = await keyName(c.get("relay").config.apiKeys, m[1]!);
  if (name === undefined) throw new ApiError(403, { code: "invalid_api_key", message: "the API key is not valid" });
  c.set("apiKey", name);
  await next();
};

/**
 * Largest delivery body read, bytes: a task message (its payload is at most MAX_BODY_BYTES) or a
 * failure callback carrying one in base64 beside the last answer.
 */
const MAX_DELIVERY_BYTES = 3 * MAX_BODY_BYTES;

/**
 * Requires QStash's signature, `sub` included (checked against the configured public URL, not
 * the URL this request happened to arrive at). The token is checked before a byte of the body is
 * read, so an unsigned or forged request costs nothing; then the raw bytes, capped, are hashed
 * exactly as received. The verified body is `c.var.body`, the token's claims `c.var.claims`;
 * anything else is a 401 (413 when too large) and nothing happens.
 */
export const requireQstashSignature: MiddlewareHandler<AppEnv> = async (c, next) => {
  const relay = c.get("relay");
  const signature = c.req.header("upstash-signature");
  const url = new URL(c.req.url);
  if (signature) {
    let verified = false;
    try {
      const claims = await relay.services.receiver.verifyToken(signature, relay.config.publicUrl + url.pathname + url.search);
      const raw = await readBytes(c, MAX_DELIVERY_BYTES);
      await relay.services.receiver.checkBody(claims, raw);
      c.set("body", bodyText(raw));
      c.set("claims", claims);
      verified = true;
    } catch (err) {
      if (err instanceof ApiError) throw err; // too large (413) or cut short (400): still nothing done
      console.warn(`[celeriac] rejected a delivery to ${url.pathname}: ${messageOf(err)}`);
    }
    if (verified) return next();
  }
  throw new ApiError(401, { code: "invalid_signature", message: "not signed by QStash with the configured keys" });
};
