import { randomUUID } from "node:crypto";
import type { CapturedEmail, EmailFields, Endpoint, Reply } from "./types.ts";
import { apiError, checkEmail } from "./validation.ts";

export type BatchValidation = "strict" | "permissive";

const MAX_BATCH = 100;

function capture(mailbox: CapturedEmail[], email: EmailFields, payload: unknown, endpoint: Endpoint, key: string | null): string {
  const id = randomUUID();
  mailbox.push({
    id,
    created_at: new Date().toISOString(),
    idempotency_key: key,
    endpoint,
    last_event: email.scheduled_at ? "scheduled" : "delivered",
    ...email,
    payload: payload as Record<string, unknown>,
  });
  return id;
}

/** `POST /emails` after auth, faults and idempotency: validate, capture, answer. */
export function sendOne(mailbox: CapturedEmail[], body: unknown, key: string | null): Reply {
  if (Array.isArray(body))
    return { status: 422, body: apiError(422, "validation_error", "Expected one email object; use /emails/batch for an array.") };
  const checked = checkEmail(body, false);
  if (!checked.ok) return { status: checked.error.statusCode, body: checked.error };
  return { status: 200, body: { id: capture(mailbox, checked.email, body, "/emails", key) } };
}

/** `POST /emails/batch`: strict rejects the whole batch on one bad email, permissive sends the rest. */
export function sendBatch(mailbox: CapturedEmail[], body: unknown, mode: BatchValidation, key: string | null): Reply {
  if (!Array.isArray(body))
    return { status: 422, body: apiError(422, "validation_error", "The batch body must be a JSON array of emails.") };
  if (body.length < 1 || body.length > MAX_BATCH) {
    return { status: 422, body: apiError(422, "validation_error", `A batch holds 1 to ${MAX_BATCH} emails, got ${body.length}.`) };
  }
  const checked = body.map((raw) => checkEmail(raw, true));
  if (mode === "strict") {
    const bad = checked.findIndex((c) => !c.ok);
    const first = checked[bad];
    if (first && !first.ok) {
      const e = first.error;
      return { status: e.statusCode, body: apiError(e.statusCode, e.name, `emails[${bad}]: ${e.message}`) };
    }
  }
  const data: { id: string }[] = [];
  const errors: { index: number; message: string }[] = [];
  checked.forEach((c, index) => {
    if (c.ok) data.push({ id: capture(mailbox, c.email, body[index], "/emails/batch", key) });
    else errors.push({ index, message: c.error.message });
  });
  return { status: 200, body: mode === "permissive" ? { data, errors } : { data } };
}

/** `GET /emails/:id`, shaped like Resend's email object. */
export function emailObject(e: CapturedEmail): Record<string, unknown> {
  return {
    object: "email",
    id: e.id,
    to: e.to,
    from: e.from,
    created_at: e.created_at,
    subject: e.subject,
    html: e.html,
    text: e.text,
    cc: e.cc,
    bcc: e.bcc,
    reply_to: e.reply_to,
    last_event: e.last_event,
    scheduled_at: e.scheduled_at,
    tags: e.tags ?? [],
    message_id: `<${e.id}@celeriac.mail-sink>`,
  };
}
