/** Upstash-Signature: a compact HS256 JWT keyed with the UTF-8 bytes of the `sig_…` key. */
import { createHash, createHmac, randomBytes } from "node:crypto";

const HEADER = Buffer.from(JSON.stringify({ alg: "HS256", typ: "JWT" })).toString("base64url");

/** base64url SHA-256 of the raw body, as carried in the `body` claim (no padding). */
export function bodyHash(body: Uint8Array): string {
  return createHash("sha256").update(body).digest("base64url");
}

/** A fresh token for one attempt: `sub` is the exact URL called, `jti` is unique. */
export function signDelivery(key: string, url: string, body: Uint8Array, nowMs = Date.now()): string {
  const iat = Math.floor(nowMs / 1000);
  const claims = {
    iss: "Upstash",
    sub: url,
    exp: iat + 300,
    nbf: iat,
    iat,
    jti: `jwt_${randomBytes(12).toString("hex")}`,
    body: bodyHash(body),
  };
  const unsigned = `${HEADER}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}`;
  const signature = createHmac("sha256", Buffer.from(key, "utf8")).update(unsigned).digest("base64url");
  return `${unsigned}.${signature}`;
}
