// QStash's delivery signature, checked strictly. `Upstash-Signature` is a compact HS256 JWT keyed
// with the UTF-8 bytes of a `sig_…` key; its `body` claim is the base64url SHA-256 of the body.
// Checked here rather than with the client's Receiver because that one hashes a decoded string
// (a BOM or invalid bytes vanish in decoding, so altered bytes still matched) and its JWT decoder
// accepts non-canonical encodings (standard base64, padding). Everything is compared byte for byte
// against the canonical encoding, and the token is checked before the body is read at all.
import { base64Url, fromBase64, hmacKey } from "./hmac.ts";

/** Why a delivery's signature was refused; the message says which check failed. */
export class SignatureError extends Error {
  override name = "SignatureError";
}

/** The claims of a verified token that callers may use. */
export interface SignedClaims {
  /** Unique per token: a token may be spent once (see the schedule runs). */
  jti: string;
  /** Expiry, unix seconds. */
  exp: number;
  /** base64url SHA-256 of the body, without padding. */
  body: string;
}

const CANONICAL_SEGMENT = /^[A-Za-z0-9_-]+$/;

/** Decodes one JWT segment, refusing every spelling but the canonical one. */
function segment(s: string, what: string): Uint8Array<ArrayBuffer> {
  if (!CANONICAL_SEGMENT.test(s) || s.length % 4 === 1) throw new SignatureError(`${what} is not base64url`);
  const bytes = fromBase64(s)!; // the pattern admits base64url only
  // Trailing bits that are not zero decode to the same bytes: a second spelling of one token.
  if (base64Url(bytes) !== s) throw new SignatureError(`${what} is not in canonical base64url`);
  return bytes;
}

const utf8 = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function json(bytes: Uint8Array, what: string): Record<string, unknown> {
  try {
    const v = JSON.parse(strictUtf8.decode(bytes));
    if (v && typeof v === "object" && !Array.isArray(v)) return v;
  } catch {
    // reported below
  }
  throw new SignatureError(`${what} is not a JSON object`);
}

/** Verifies QStash's signatures with the current key, then the next one (during a rotation). */
export class QStashVerifier {
  readonly #keys: Promise<CryptoKey>[];
  constructor(currentSigningKey: string, nextSigningKey: string) {
    this.#keys = [currentSigningKey, nextSigningKey].map((k) => hmacKey(k));
  }

  /**
   * Checks the token alone: encoding, HS256 signature, issuer, `sub` (the URL it was meant for)
   * and its validity period. Throws a {@link SignatureError}; the body is checked by {@link checkBody}.
   */
  async verifyToken(token: string, url: string, nowMs = Date.now()): Promise<SignedClaims> {
    const parts = token.split(".");
    if (parts.length !== 3) throw new SignatureError("not a compact JWT");
    const [h, c, s] = parts as [string, string, string];
    const header = json(segment(h, "header"), "header");
    if (header.alg !== "HS256") throw new SignatureError(`alg must be HS256, not ${JSON.stringify(header.alg)}`);
    // Critical extensions (RFC 7515 §4.1.11) change how a token is read; QStash uses none.
    if (header.crit !== undefined) throw new SignatureError("crit header: no extension is understood");
    const signature = segment(s, "signature");
    const signed = utf8.encode(`${h}.${c}`);
    let ok = false;
    for (const key of this.#keys) if (!ok) ok = await crypto.subtle.verify("HMAC", await key, signature, signed);
    if (!ok) throw new SignatureError("signature does not match the signing keys");
    const claims = json(segment(c, "claims"), "claims");
    const now = Math.floor(nowMs / 1000);
    if (claims.iss !== "Upstash") throw new SignatureError("issuer is not Upstash");
    if (claims.sub !== url) throw new SignatureError(`signed for ${JSON.stringify(claims.sub)}, not ${url}`);
    // As the client's Receiver (jose) reads them: expired from the second `exp` names; `nbf` and
    // `iat`, when present, must be numbers.
    if (typeof claims.exp !== "number" || now >= claims.exp) throw new SignatureError("expired");
    if (claims.nbf !== undefined && typeof claims.nbf !== "number") throw new SignatureError("nbf claim is not a number");
    if (claims.iat !== undefined && typeof claims.iat !== "number") throw new SignatureError("iat claim is not a number");
    if (typeof claims.nbf === "number" && now < claims.nbf) throw new SignatureError("not valid yet");
    if (typeof claims.jti !== "string" || claims.jti === "") throw new SignatureError("no jti claim");
    if (typeof claims.body !== "string") throw new SignatureError("no body claim");
    // QStash may pad the hash; the padding carries nothing, and the claim is inside the signature.
    return { jti: claims.jti, exp: claims.exp, body: claims.body.replace(/=+$/, "") };
  }

  /** Checks the body's raw bytes (exactly as received) against the token's `body` claim. */
  async checkBody(claims: SignedClaims, body: Uint8Array<ArrayBuffer>): Promise<void> {
    const hash = base64Url(await crypto.subtle.digest("SHA-256", body));
    if (hash !== claims.body) throw new SignatureError("body does not match the signed hash");
  }
}

/** Decodes a verified body as strict UTF-8 (no BOM stripped, no bytes replaced); throws otherwise. */
export function bodyText(body: Uint8Array): string {
  return strictUtf8.decode(body);
}
