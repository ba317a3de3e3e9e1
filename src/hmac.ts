// HMAC-SHA256 and the base64 spellings of its output, by Web Crypto: the one place celeriac signs
// with a shared secret (receipts, sessions, one-time codes and their tokens, Standard Webhooks).

const utf8 = new TextEncoder();

/** base64 with the standard alphabet and padding. */
export function base64(bytes: Uint8Array | ArrayBuffer): string {
  let bin = "";
  for (const b of new Uint8Array(bytes)) bin += String.fromCharCode(b);
  return btoa(bin);
}

/** base64url without padding (RFC 4648 §5, as JWTs and URLs spell it). */
export const base64Url = (bytes: Uint8Array | ArrayBuffer): string =>
  base64(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

/** Decodes base64 or base64url (padding optional); undefined when `s` is neither. */
export function fromBase64(s: string): Uint8Array<ArrayBuffer> | undefined {
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(s)) return undefined;
  try {
    return Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/")), (ch) => ch.charCodeAt(0));
  } catch {
    return undefined;
  }
}

// Imported keys, by secret: importing costs more than the HMAC of a short text. Secrets come from
// the configuration, so there are few; the bound only guards against a caller that makes many.
const keys = new Map<string, Promise<CryptoKey>>();
const MAX_KEYS = 64;

/**
 * The HMAC-SHA256 key of `secret`: its UTF-8 bytes, or the bytes it spells in base64. Imported
 * once per isolate. Rejects a `base64` secret that is not base64, and an empty one.
 * @example await hmacKey("c2VjcmV0", "base64")
 */
export function hmacKey(secret: string, encoding: "utf8" | "base64" = "utf8"): Promise<CryptoKey> {
  const id = `${encoding}:${secret}`;
  let k = keys.get(id);
  if (!k) {
    const raw = encoding === "utf8" ? utf8.encode(secret) : fromBase64(secret);
    if (!raw?.length) return Promise.reject(new Error("the secret is empty, or not base64"));
    if (keys.size >= MAX_KEYS) keys.clear();
    keys.set(id, (k = crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"])));
  }
  return k;
}

/** HMAC-SHA256 of `data` (a string is signed as UTF-8) under `key`, or a secret's UTF-8 bytes. */
export async function hmac(key: CryptoKey | string, data: string | Uint8Array<ArrayBuffer>): Promise<ArrayBuffer> {
  return crypto.subtle.sign(
    "HMAC",
    typeof key === "string" ? await hmacKey(key) : key,
    typeof data === "string" ? utf8.encode(data) : data,
  );
}

/** Compares two byte strings without an early exit, so timing does not reveal a matching prefix. */
export function same(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ (b[i] ?? 0);
  return diff === 0;
}
