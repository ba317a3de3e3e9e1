import type { CreateEmailOptions, Resend } from "resend";
import { PermanentError, RetryLater, retryAfterSeconds } from "./errors.ts";

/** Sends one email; throws PermanentError, RetryLater or a plain (retryable) Error. */
export type Mailer = (email: CreateEmailOptions) => Promise<{ id: string }>;

/** Statuses Resend answers for a request that will never succeed as sent. */
const PERMANENT = new Set([400, 401, 403, 404, 405, 409, 413, 422]);

/**
 * A mailer bound to one task: every send carries `Idempotency-Key` derived from the task id,
 * so a retry after a lost answer returns Resend's first reply instead of sending again.
 */
export function mailerFor(resend: Resend, idempotencyKey: string): Mailer {
  let n = 0;
  return async (email) => {
    // A task may send several emails; each gets its own stable key.
    const key = n++ === 0 ? idempotencyKey : `${idempotencyKey}/${n - 1}`;
    const { data, error, headers } = await resend.emails.send(email, { idempotencyKey: key });
    if (data) return { id: data.id };
    const status = error?.statusCode ?? 0;
    const message = `Resend: ${error?.name ?? "error"}: ${error?.message ?? "no answer"}`;
    if (status === 429 || error?.name === "concurrent_idempotent_requests") {
      throw new RetryLater({ after: retryAfterSeconds(headers?.["retry-after"]) ?? 1, message, code: error?.name ?? "rate_limited" });
    }
    if (PERMANENT.has(status)) throw new PermanentError(message, error?.name ?? "mail_rejected");
    // 5xx, a network error (no status) or anything unexpected: retry with backoff.
    throw new Error(message);
  };
}
