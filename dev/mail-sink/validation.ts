import type { ApiError, EmailFields } from "./types.ts";

export type Checked = { ok: true; email: EmailFields } | { ok: false; error: ApiError };

const MAX_RECIPIENTS = 50;
const MAX_ATTACHMENT_BYTES = 40 * 1024 * 1024;
const BARE = /^[^\s@<>",;]+@[^\s@<>",;.]+(?:\.[^\s@<>",;.]+)+$/;
const NAMED = /^(?:"[^"]*"|[^<>"]*)<([^<>]*)>$/;
const TAG = /^[A-Za-z0-9_-]{1,256}$/;
// Resend refuses these reserved domains outright rather than bouncing later.
const REFUSED_DOMAINS = ["example.com", "test.com"];

export const apiError = (statusCode: number, name: string, message: string): ApiError => ({ statusCode, name, message });
const fail = (statusCode: number, name: string, message: string) => ({ ok: false as const, error: apiError(statusCode, name, message) });

/** The bare address of `a@b.co` or `Name <a@b.co>`, or null when malformed. */
export function addressOf(value: string): string | null {
  const trimmed = value.trim();
  const inner = (NAMED.exec(trimmed)?.[1] ?? trimmed).trim();
  return BARE.test(inner) ? inner : null;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const absent = (v: unknown) => v === undefined || v === null;
const badFormat = (field: string) =>
  fail(
    422,
    "validation_error",
    `Invalid \`${field}\` field. The email address needs to follow the \`email@example.com\` or \`Name <email@example.com>\` format.`,
  );

type List = { ok: true; list: string[] } | { ok: false; error: ApiError };

function addressList(field: string, value: unknown, recipients: boolean): List {
  const list = typeof value === "string" ? [value] : value;
  if (!Array.isArray(list) || !list.every((v): v is string => typeof v === "string")) {
    return fail(422, "invalid_parameter", `\`${field}\` must be a string or an array of strings.`);
  }
  if (list.length > MAX_RECIPIENTS) {
    return fail(422, "invalid_parameter", `Too many recipients in \`${field}\`: ${list.length}, the maximum is ${MAX_RECIPIENTS}.`);
  }
  for (const entry of list) {
    const address = addressOf(entry);
    if (!address) return badFormat(field);
    const domain = address.slice(address.lastIndexOf("@") + 1).toLowerCase();
    const refused = REFUSED_DOMAINS.find((d) => domain === d || domain.endsWith(`.${d}`));
    if (recipients && refused) {
      return fail(
        422,
        "invalid_attachment",
        `We don't allow sending to ${refused} addresses (\`${field}\`: ${address}). Use a real domain or a @resend.dev test address.`,
      );
    }
  }
  return { ok: true, list };
}

function attachmentBytes(content: unknown): number | null {
  if (typeof content === "string") return Math.floor((content.length * 3) / 4);
  // A Node Buffer serialised with JSON.stringify.
  if (isObject(content) && content.type === "Buffer" && Array.isArray(content.data)) return content.data.length;
  return null;
}

function checkAttachments(value: unknown): ApiError | null {
  if (!Array.isArray(value)) return apiError(422, "invalid_parameter", "`attachments` must be an array.");
  let total = 0;
  for (const [i, a] of value.entries()) {
    if (!isObject(a)) return apiError(422, "invalid_attachment", `Attachment ${i} must be an object.`);
    if (absent(a.content) && absent(a.path)) {
      return apiError(422, "invalid_attachment", "Attachment must have either a `content` or `path`.");
    }
    if (!absent(a.content)) {
      const bytes = attachmentBytes(a.content);
      if (bytes === null) return apiError(422, "invalid_attachment", `Attachment ${i} \`content\` must be base64 text or a Buffer.`);
      if (typeof a.filename !== "string" || !a.filename) {
        return apiError(422, "invalid_attachment", `Attachment ${i} with \`content\` needs a \`filename\`.`);
      }
      total += bytes;
    } else if (typeof a.path !== "string") {
      return apiError(422, "invalid_attachment", `Attachment ${i} \`path\` must be a URL string.`);
    }
  }
  return total > MAX_ATTACHMENT_BYTES ? apiError(422, "invalid_attachment", "Attachments exceed the 40 MB limit.") : null;
}

const isSchedule = (v: string) => !Number.isNaN(Date.parse(v)) || /^in \d+ (?:min|minute|hour|day)s?$/i.test(v.trim());

/** Validates one email as `POST /emails` (or, with `batch`, one element of `POST /emails/batch`) takes it. */
export function checkEmail(raw: unknown, batch: boolean): Checked {
  if (!isObject(raw)) return fail(422, "validation_error", "Each email must be a JSON object.");
  for (const field of ["from", "to", "subject"] as const) {
    const v = raw[field];
    if (absent(v) || v === "" || (Array.isArray(v) && v.length === 0)) {
      return fail(422, "missing_required_field", `Missing \`${field}\` field.`);
    }
  }
  if (absent(raw.html) && absent(raw.text) && absent(raw.template)) {
    return fail(422, "missing_required_field", "Missing `html` or `text` field.");
  }
  for (const field of ["subject", "html", "text"] as const) {
    if (!absent(raw[field]) && typeof raw[field] !== "string") {
      return fail(422, "invalid_parameter", `\`${field}\` must be a string.`);
    }
  }
  if (typeof raw.from !== "string") return fail(422, "invalid_parameter", "`from` must be a string.");
  if (!addressOf(raw.from)) return badFormat("from");
  const lists: Record<"to" | "cc" | "bcc" | "reply_to", string[] | null> = { to: null, cc: null, bcc: null, reply_to: null };
  for (const field of ["to", "cc", "bcc", "reply_to"] as const) {
    if (absent(raw[field])) continue;
    const r = addressList(field, raw[field], field !== "reply_to");
    if (!r.ok) return r;
    lists[field] = r.list;
  }
  if (!absent(raw.headers) && (!isObject(raw.headers) || !Object.values(raw.headers).every((v) => typeof v === "string"))) {
    return fail(422, "invalid_parameter", "`headers` must be an object of string values.");
  }
  if (!absent(raw.tags)) {
    const ok =
      Array.isArray(raw.tags) &&
      raw.tags.every(
        (t) => isObject(t) && typeof t.name === "string" && TAG.test(t.name) && typeof t.value === "string" && TAG.test(t.value),
      );
    if (!ok)
      return fail(
        422,
        "invalid_parameter",
        "`tags` must be an array of {name, value} made of ASCII letters, digits, underscores or dashes.",
      );
  }
  if (batch && !absent(raw.attachments)) return fail(422, "invalid_parameter", "`attachments` are not supported by the batch endpoint.");
  if (batch && !absent(raw.scheduled_at)) return fail(422, "invalid_parameter", "`scheduled_at` is not supported by the batch endpoint.");
  if (!absent(raw.attachments)) {
    const error = checkAttachments(raw.attachments);
    if (error) return { ok: false, error };
  }
  if (!absent(raw.scheduled_at) && (typeof raw.scheduled_at !== "string" || !isSchedule(raw.scheduled_at))) {
    return fail(422, "invalid_parameter", "`scheduled_at` must be an ISO 8601 date or a phrase like `in 1 min`.");
  }
  return {
    ok: true,
    email: {
      from: raw.from,
      to: lists.to ?? [],
      subject: raw.subject as string,
      html: (raw.html as string | undefined) ?? null,
      text: (raw.text as string | undefined) ?? null,
      cc: lists.cc,
      bcc: lists.bcc,
      reply_to: lists.reply_to,
      headers: (raw.headers as Record<string, string> | undefined) ?? null,
      attachments: (raw.attachments as unknown[] | undefined) ?? null,
      tags: (raw.tags as { name: string; value: string }[] | undefined) ?? null,
      scheduled_at: (raw.scheduled_at as string | undefined) ?? null,
    },
  };
}
