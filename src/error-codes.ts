/**
 * Every error code celeriac answers with, once: its HTTP status and what it means. The README's
 * error table is checked against this list by a test, so the two cannot drift apart.
 */
export const ERROR_CODES = {
  invalid_callback: {
    status: 200,
    meaning: "a signed failure callback that is not about a celeriac message: acknowledged, nothing recorded",
  },
  invalid_json: { status: 400, meaning: "the body is not valid JSON" },
  json_too_deep: { status: 400, meaning: "the body nests arrays and objects deeper than 64 levels" },
  incomplete_body: { status: 400, meaning: "the body ended before its `Content-Length` (the client gave up, or the connection dropped)" },
  invalid_options: { status: 400, meaning: "an enqueue option is unknown or malformed (issues name each)" },
  invalid_query: { status: 400, meaning: "a query parameter of a list is malformed" },
  invalid_check: {
    status: 400,
    meaning: "a verification check's body is not `{email, purpose, code}` as the task defines them (issues name each field)",
  },
  invalid_event: { status: 400, meaning: "a signed Resend event whose body is not an email event" },
  invalid_date: { status: 400, meaning: "the date of a daily report is not `YYYY-MM-DD`" },
  missing_api_key: { status: 401, meaning: "no `Authorization: Bearer <key>` header" },
  invalid_signature: {
    status: 401,
    meaning: "a delivery not signed by QStash with the configured keys, or a Resend event not signed with `RESEND_WEBHOOK_SECRET`",
  },
  stale_event: { status: 401, meaning: "a Resend event whose `svix-timestamp` is more than 5 minutes off" },
  replayed_signature: { status: 401, meaning: "a scheduled run's signed delivery replayed (each signature starts one run)" },
  invalid_api_key: { status: 403, meaning: "the API key is not one of `CELERIAC_API_KEYS`" },
  origin_not_allowed: {
    status: 403,
    meaning: "a public route called from a page whose origin is not on the task's allow-list (no CORS headers)",
  },
  turnstile_required: {
    status: 403,
    meaning: "the public task asks for a Turnstile token and the `cf-turnstile-response` header has none",
  },
  turnstile_failed: { status: 403, meaning: "Turnstile's siteverify refused the token (its error codes in the message)" },
  not_found: { status: 404, meaning: "no such route" },
  unknown: {
    status: 404,
    meaning: 'no task with this id (never enqueued, or expired); the body says `state: "unknown"`; or an address that is not suppressed',
  },
  unknown_task: { status: 404, meaning: "no task type of this name" },
  unknown_schedule: { status: 404, meaning: "no celeriac schedule with this id" },
  no_report: { status: 404, meaning: "no stored daily report for this date" },
  unknown_receipt: { status: 404, meaning: "not a receipt celeriac signed" },
  idempotency_key_reused: { status: 409, meaning: "the idempotency key was first used with another task or payload" },
  not_cancellable: { status: 409, meaning: "the task already started or ended" },
  not_retryable: { status: 409, meaning: "only failed or cancelled tasks can be retried" },
  payload_redacted: { status: 409, meaning: "the task's payload held redacted values the record never kept: enqueue it again" },
  not_dead: { status: 409, meaning: "the task is not a dead letter (not failed, or already replayed or discarded)" },
  code_used: { status: 409, meaning: "this verification code was already used" },
  receipt_expired: { status: 410, meaning: "the receipt expired with its task's record" },
  code_expired: { status: 410, meaning: "no live verification code for this address and purpose (expired, or never sent)" },
  body_too_large: { status: 413, meaning: "the body is over 1 MB (4 KiB on public routes)" },
  unsupported_media_type: { status: 415, meaning: "the body is not sent as JSON" },
  invalid_payload: { status: 422, meaning: "the payload does not fit the task's schema (issues name each field)" },
  invalid_batch: { status: 422, meaning: "an entry of a batch is invalid (issues by index); nothing was enqueued" },
  wrong_code: { status: 422, meaning: "the verification code is not right; `triesLeft` says how many tries remain" },
  rejected_by_qstash: { status: 422, meaning: "QStash refused the task (e.g. over a plan limit); 413 when it is too large" },
  rate_limited: {
    status: 429,
    meaning: "a public task's limit (per IP, recipient or task) is reached; `Retry-After` and `RateLimit` say when; nothing was enqueued",
  },
  too_many_attempts: { status: 429, meaning: "five wrong tries: the verification code no longer works; request a new one" },
  invalid_message: { status: 489, meaning: "a signed delivery that is not a celeriac message (QStash does not retry it)" },
  internal: { status: 500, meaning: "a bug in celeriac" },
  misconfigured: {
    status: 503,
    meaning: "a variable of the relay, or of the task asked for, is missing or malformed (named in the message)",
  },
  qstash_unavailable: { status: 503, meaning: "QStash cannot be reached; nothing was left half-written" },
  turnstile_unavailable: { status: 503, meaning: "Turnstile's siteverify could not be reached, or refused our secret key" },
  redis_unavailable: { status: 503, meaning: "Redis cannot be reached; nothing was left half-written" },
} as const satisfies Record<string, { status: number; meaning: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;
