import type { CreateBatchEmailOptions, CreateEmailOptions, ErrorResponse, Resend } from "resend";
import { TASK_TAG } from "./email-events.ts";
import { PermanentError, RateLimited, RetryLater, retryAfterSeconds } from "./errors.ts";
import type { Suppression } from "./store/delivery.ts";

export interface MailOptions {
  /**
   * Send even to addresses that hard-bounced or complained before (see `GET /v1/suppressions`).
   * @default false (such a send fails for good with code `suppressed`)
   */
  ignoreSuppression?: boolean;
}

/** Sends one email; throws PermanentError, RateLimited, RetryLater or a plain (retryable) Error. */
export type Mailer = (email: CreateEmailOptions, options?: MailOptions) => Promise<{ id: string }>;

/** One email's outcome in a batch call: its Resend id, or why it was not sent (refused, or suppressed). */
export type BatchSent = { id: string } | { error: PermanentError };

/** One email of a batch and the task it belongs to (which its tag names and its suppression fails). */
export interface BatchEmail extends MailOptions {
  email: CreateBatchEmailOptions;
  taskId: string;
}

/**
 * Sends up to 100 emails in one Resend batch call (permissive validation: a bad email fails
 * alone); one outcome per email, in order. Throws as {@link Mailer} does when the whole call fails.
 */
export type BatchMailer = (emails: BatchEmail[]) => Promise<BatchSent[]>;

/** Which of these addresses are suppressed (src/store/delivery.ts). */
export type SuppressionCheck = (addresses: string[]) => Promise<Suppression[]>;

/** Statuses Resend answers for a request that will never succeed as sent. */
const PERMANENT = new Set([400, 401, 403, 404, 405, 409, 413, 422]);

/**
 * A mailer bound to one task: every send carries `Idempotency-Key` derived from the task id,
 * so a retry after a lost answer returns Resend's first reply instead of sending again, and the
 * tag `celeriac_task` = task id, so Resend's events about it find the task. Suppressed
 * recipients fail the send for good before Resend is called.
 */
export function mailerFor(resend: Resend, taskId: string, suppressions: SuppressionCheck): Mailer {
  let n = 0;
  return async (email, options = {}) => {
    // A task may send several emails; each gets its own stable key.
    const key = n++ === 0 ? taskId : `${taskId}/${n - 1}`;
    if (!options.ignoreSuppression) {
      const hit = await suppressions(recipientsOf(email));
      if (hit.length) throw suppressed(hit);
    }
    const { data, error, headers } = await resend.emails.send(tagged(email, taskId), { idempotencyKey: key });
    if (data) return { id: data.id };
    throw failureOf(error, headers);
  };
}

/**
 * A batch mailer bound to one batch: the call carries `Idempotency-Key` = the batch id, fixed
 * before the first call, so a retried flush gets Resend's first answer and sends nothing twice.
 * Each email is tagged with its own task; one to a suppressed recipient fails alone, unsent.
 */
export function batchMailerFor(resend: Resend, idempotencyKey: string, suppressions: SuppressionCheck): BatchMailer {
  return async (items) => {
    const checked = items.filter((it) => !it.ignoreSuppression);
    const hits = new Map((await suppressions(checked.flatMap((it) => recipientsOf(it.email)))).map((s) => [s.address, s]));
    const outcomes: (BatchSent | undefined)[] = items.map((it) => {
      if (it.ignoreSuppression) return undefined;
      const hit = recipientsOf(it.email).flatMap((a) => (hits.has(a) ? [hits.get(a)!] : []));
      return hit.length ? { error: suppressed(hit) } : undefined;
    });
    const send = items.flatMap((it, i) => (outcomes[i] ? [] : [{ it, i }]));
    if (send.length === 0) return outcomes as BatchSent[];
    const emails = send.map(({ it }) => tagged(it.email, it.taskId));
    const { data, error, headers } = await resend.batch.send(emails, { idempotencyKey, batchValidation: "permissive" });
    if (!data) throw failureOf(error, headers);
    // Permissive mode: `data` lists the accepted emails in order, `errors` the refused ones by index.
    const refused = new Map((data.errors ?? []).map((e) => [e.index, e.message]));
    const ids = data.data.map((d) => d.id);
    send.forEach(({ i }, j) => {
      const why = refused.get(j);
      const id = why === undefined ? ids.shift() : undefined;
      outcomes[i] =
        why !== undefined
          ? { error: new PermanentError(`Resend refused this email: ${why}`, "mail_rejected") }
          : id
            ? { id }
            : { error: new PermanentError("Resend answered without an id for this email", "mail_rejected") };
    });
    return outcomes as BatchSent[];
  };
}

/** The email with the tag that maps Resend's events back to its task (a caller's own is replaced). */
function tagged<E extends CreateEmailOptions | CreateBatchEmailOptions>(email: E, taskId: string): E {
  return { ...email, tags: [...(email.tags ?? []).filter((t) => t.name !== TASK_TAG), { name: TASK_TAG, value: taskId }] };
}

const suppressed = (hit: Suppression[]) =>
  new PermanentError(
    `not sent: suppressed recipient(s) ${hit.map((s) => `${s.address} (${s.reason} ${s.at})`).join(", ")}; remove them with DELETE /v1/suppressions/:address or send with ignoreSuppression`,
    "suppressed",
  );

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

/** Bare, lower-cased addresses of every recipient (to, cc, bcc) of an email. */
function recipientsOf(email: CreateEmailOptions | CreateBatchEmailOptions): string[] {
  const all = [email.to, email.cc, email.bcc].flatMap((x) => (x === undefined ? [] : Array.isArray(x) ? x : [x]));
  return all.map((raw) => (/<([^<>]+)>/.exec(raw)?.[1] ?? raw).trim().toLowerCase());
}
