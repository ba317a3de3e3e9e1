import type { CreateBatchEmailOptions, CreateEmailOptions, ErrorResponse, Resend } from "resend";
import { PermanentError, RateLimited, RetryLater, retryAfterSeconds } from "./errors.ts";

/** Sends one email; throws PermanentError, RateLimited, RetryLater or a plain (retryable) Error. */
export type Mailer = (email: CreateEmailOptions) => Promise<{ id: string }>;

/** One email's outcome in a batch call: its Resend id, or why Resend refused that email alone. */
export type BatchSent = { id: string } | { error: PermanentError };

/**
 * Sends up to 100 emails in one Resend batch call (permissive validation: a bad email fails
 * alone); one outcome per email, in order. Throws as {@link Mailer} does when the whole call fails.
 */
export type BatchMailer = (emails: CreateBatchEmailOptions[]) => Promise<BatchSent[]>;

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
    throw failureOf(error, headers);
  };
}

/**
 * A batch mailer bound to one batch: the call carries `Idempotency-Key` = the batch id, fixed
 * before the first call, so a retried flush gets Resend's first answer and sends nothing twice.
 */
export function batchMailerFor(resend: Resend, idempotencyKey: string): BatchMailer {
  return async (emails) => {
    const { data, error, headers } = await resend.batch.send(emails, { idempotencyKey, batchValidation: "permissive" });
    if (!data) throw failureOf(error, headers);
    // Permissive mode: `data` lists the accepted emails in order, `errors` the refused ones by index.
    const refused = new Map((data.errors ?? []).map((e) => [e.index, e.message]));
    const ids = data.data.map((d) => d.id);
    return emails.map((_, i) => {
      const why = refused.get(i);
      if (why !== undefined) return { error: new PermanentError(`Resend refused this email: ${why}`, "mail_rejected") };
      const id = ids.shift();
      return id ? { id } : { error: new PermanentError("Resend answered without an id for this email", "mail_rejected") };
    });
  };
}

/** What a failed Resend call means for the task: wait (429), give up (4xx), or retry. */
function failureOf(error: ErrorResponse | null, headers: Record<string, string> | null | undefined): Error {
  const status = error?.statusCode ?? 0;
  const message = `Resend: ${error?.name ?? "error"}: ${error?.message ?? "no answer"}`;
  if (status === 429 && error?.name === "rate_limit_exceeded") {
    return new RateLimited({ after: retryAfterSeconds(headers?.["retry-after"]) ?? 1, message, code: error.name });
  }
  if (status === 429 || error?.name === "concurrent_idempotent_requests") {
    // A daily or monthly quota, or the same key still in flight: later, as an ordinary retry.
    return new RetryLater({ after: retryAfterSeconds(headers?.["retry-after"]) ?? 1, message, code: error?.name ?? "rate_limited" });
  }
  if (PERMANENT.has(status)) return new PermanentError(message, error?.name ?? "mail_rejected");
  // 5xx, a network error (no status) or anything unexpected: retry with backoff.
  return new Error(message);
}

