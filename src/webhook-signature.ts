// Standard Webhooks signatures (https://www.standardwebhooks.com), as Svix and so Resend send them
// and as the webhook task signs its requests: `webhook-signature: v1,<base64 HMAC-SHA256>` over
// `<webhook-id>.<webhook-timestamp>.<body>`, keyed with the base64 bytes of a `whsec_…` secret.
// Several space-separated signatures may be sent (during a key rotation); one matching is enough.
// Written on Web Crypto rather than with the `standardwebhooks` package, whose pure-JS SHA-256 and
// base64 cost 12 KiB of bundle and more CPU per signature; test/webhook-signature.test.ts checks
// that each side verifies the other's signatures.
import { base64, hmac, hmacKey, same } from "./hmac.ts";

/** How far a signed timestamp may be from now, either way, seconds (the library's tolerance). */
export const WEBHOOK_TOLERANCE_S = 300;

const PREFIX = "whsec_";
const utf8 = new TextEncoder();

/** The key of a `whsec_<base64>` secret (the prefix is optional, as in the library). */
const keyOf = (secret: string): Promise<CryptoKey> =>
  hmacKey(secret.startsWith(PREFIX) ? secret.slice(PREFIX.length) : secret, "base64").catch(() => {
    throw new Error("a webhook secret must be whsec_ followed by non-empty base64");
  });

const signatureOf = async (secret: string, id: string, timestamp: number, body: string) =>
  base64(await hmac(await keyOf(secret), `${id}.${timestamp}.${body}`));

/**
 * The `webhook-signature` header value of one request: `v1,<base64>`.
 * @param timestamp unix seconds, the `webhook-timestamp` header sent with it
 * @example await signWebhook(env.CELERIAC_WEBHOOK_SECRET, ctx.id, Math.floor(Date.now() / 1000), body)
 */
export async function signWebhook(secret: string, id: string, timestamp: number, body: string): Promise<string> {
  return `v1,${await signatureOf(secret, id, timestamp, body)}`;
}

/** Why a signed request was refused: no signature of ours, or a timestamp out of tolerance. */
export type WebhookCheck = { ok: true } | { ok: false; reason: "signature" | "timestamp"; message: string };

/**
 * Verifies a Standard Webhooks request over its body exactly as received. Refuses a missing
 * header, a timestamp more than {@link WEBHOOK_TOLERANCE_S} from `nowMs` (either way), and a
 * request none of whose `v1` signatures is the body's (compared without an early exit). Throws
 * only for a secret that is not base64.
 */
export async function verifyWebhook(
  secret: string,
  headers: { id?: string | undefined; timestamp?: string | undefined; signature?: string | undefined },
  body: string,
  nowMs = Date.now(),
): Promise<WebhookCheck> {
  const { id, timestamp, signature } = headers;
  if (!id || !timestamp || !signature) return { ok: false, reason: "signature", message: "missing webhook-id, -timestamp or -signature" };
  // Digits only: the library's parseInt would read "1700000000abc" as 1700000000 and accept it.
  if (!/^\d{1,12}$/.test(timestamp)) return { ok: false, reason: "signature", message: "the timestamp is not unix seconds" };
  const at = Number(timestamp);
  const now = Math.floor(nowMs / 1000);
  if (now - at > WEBHOOK_TOLERANCE_S) return { ok: false, reason: "timestamp", message: "the timestamp is too old" };
  if (at - now > WEBHOOK_TOLERANCE_S) return { ok: false, reason: "timestamp", message: "the timestamp is too new" };
  const expected = utf8.encode(await signatureOf(secret, id, at, body));
  let ok = false;
  for (const versioned of signature.split(" ")) {
    const [version, sig] = versioned.split(",");
    if (version === "v1" && sig !== undefined && same(utf8.encode(sig), expected)) ok = true;
  }
  return ok ? { ok: true } : { ok: false, reason: "signature", message: "no signature matches the secret" };
}
