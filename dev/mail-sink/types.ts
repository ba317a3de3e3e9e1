/** The error body Resend sends with every non-2xx reply (the SDK passes it through as `error`). */
export interface ApiError {
  statusCode: number;
  name: string;
  message: string;
}

export type Endpoint = "/emails" | "/emails/batch";

/** The email fields after validation, normalised the way `GET /emails/:id` reports them. */
export interface EmailFields {
  from: string;
  to: string[];
  subject: string;
  html: string | null;
  text: string | null;
  cc: string[] | null;
  bcc: string[] | null;
  reply_to: string[] | null;
  headers: Record<string, string> | null;
  attachments: unknown[] | null;
  tags: { name: string; value: string }[] | null;
  scheduled_at: string | null;
}

/** One email the sink accepted. */
export interface CapturedEmail extends EmailFields {
  /** UUID, as returned to the caller. */
  id: string;
  /** ISO 8601. */
  created_at: string;
  /** The `Idempotency-Key` the send carried, if any. */
  idempotency_key: string | null;
  endpoint: Endpoint;
  last_event: "delivered" | "scheduled" | "sent" | "bounced" | "complained" | "delivery_delayed";
  /** The email object exactly as received (snake_case, as the SDK sends it). */
  payload: Record<string, unknown>;
}

/** A reply the sink has decided on, kept verbatim for idempotent replays. */
export interface Reply {
  status: number;
  body: unknown;
}
