import { ApiError, messageOf } from "./errors.ts";

/** Cloudflare's siteverify endpoint. */
export const SITEVERIFY_URL = "https://challenges.cloudflare.com/turnstile/v0/siteverify";
/** The request header a browser puts the widget's token in. */
export const TURNSTILE_HEADER = "cf-turnstile-response";
/** siteverify should answer well within this (ms); past it the call is a 503, not a hang. */
const TIMEOUT_MS = 5_000;

/**
 * Verifies a Turnstile token with siteverify before anything is enqueued: 403 `turnstile_required`
 * when the browser sent none, 403 `turnstile_failed` (with Cloudflare's error codes) when it is
 * refused, 503 when siteverify cannot be reached.
 */
export async function verifyTurnstile(o: { secret: string; url: string; token: string | undefined; ip?: string }): Promise<void> {
  if (!o.token) {
    throw new ApiError(403, {
      code: "turnstile_required",
      message: `[celeriac] this task needs a Turnstile token in the ${TURNSTILE_HEADER} header`,
    });
  }
  if (o.token.length > 2048)
    throw new ApiError(403, { code: "turnstile_failed", message: "[celeriac] the Turnstile token is not valid: invalid-input-response" });
  let answer: { success?: unknown; "error-codes"?: unknown };
  try {
    const r = await fetch(o.url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ secret: o.secret, response: o.token, ...(o.ip && o.ip !== "unknown" ? { remoteip: o.ip } : {}) }),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    answer = (await r.json()) as typeof answer;
  } catch (err) {
    throw unavailable(messageOf(err), err);
  }
  if (answer.success === true) return;
  const codes = Array.isArray(answer["error-codes"]) ? answer["error-codes"].map(String) : [];
  if (codes.some((c) => c === "missing-input-secret" || c === "invalid-input-secret" || c === "internal-error")) {
    // Our configuration or Cloudflare is at fault, not the browser.
    throw unavailable(codes.join(", "));
  }
  throw new ApiError(403, {
    code: "turnstile_failed",
    message: `[celeriac] the Turnstile token is not valid: ${codes.join(", ") || "refused"}`,
  });
}

const unavailable = (why: string, cause?: unknown) =>
  new ApiError(503, { code: "turnstile_unavailable", message: `[celeriac] Turnstile's siteverify failed: ${why}`, retryAfter: 5, cause });
