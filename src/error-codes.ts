/**
 * Every error code celeriac answers with, once: its HTTP status and what it means. The README's
 * error table is checked against this list by a test, so the two cannot drift apart.
 */
export const ERROR_CODES = {
  invalid_callback: { status: 200, meaning: "a signed failure callback that is not about a celeriac message: acknowledged, nothing recorded" },
  invalid_json: { status: 400, meaning: "the body is not valid JSON" },
  invalid_options: { status: 400, meaning: "an enqueue option is unknown or malformed (issues name each)" },
  invalid_query: { status: 400, meaning: "a query parameter of a list is malformed" },
  invalid_date: { status: 400, meaning: "the date of a daily report is not `YYYY-MM-DD`" },
  missing_api_key: { status: 401, meaning: "no `Authorization: Bearer <key>` header" },
  invalid_signature: { status: 401, meaning: "a delivery not signed by QStash with the configured keys" },
  invalid_api_key: { status: 403, meaning: "the API key is not one of `CELERIAC_API_KEYS`" },
  not_found: { status: 404, meaning: "no such route" },
  unknown: { status: 404, meaning: "no task with this id (never enqueued, or expired); the body says `state: \"unknown\"`" },
  unknown_task: { status: 404, meaning: "no task type of this name" },
  unknown_schedule: { status: 404, meaning: "no celeriac schedule with this id" },
  no_report: { status: 404, meaning: "no stored daily report for this date" },
  idempotency_key_reused: { status: 409, meaning: "the idempotency key was first used with another task or payload" },
  not_cancellable: { status: 409, meaning: "the task already started or ended" },
  not_retryable: { status: 409, meaning: "only failed or cancelled tasks can be retried" },
  body_too_large: { status: 413, meaning: "the body is over 1 MB" },
  unsupported_media_type: { status: 415, meaning: "the body is not sent as JSON" },
  invalid_payload: { status: 422, meaning: "the payload does not fit the task's schema (issues name each field)" },
  invalid_batch: { status: 422, meaning: "an entry of a batch is invalid (issues by index); nothing was enqueued" },
  rejected_by_qstash: { status: 422, meaning: "QStash refused the task (e.g. over a plan limit); 413 when it is too large" },
  invalid_message: { status: 489, meaning: "a signed delivery that is not a celeriac message (QStash does not retry it)" },
  internal: { status: 500, meaning: "a bug in celeriac" },
  misconfigured: { status: 503, meaning: "a variable of the relay, or of the task asked for, is missing or malformed (named in the message)" },
  qstash_unavailable: { status: 503, meaning: "QStash cannot be reached; nothing was left half-written" },
  redis_unavailable: { status: 503, meaning: "Redis cannot be reached; nothing was left half-written" },
} as const satisfies Record<string, { status: number; meaning: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;
