// The typed client's errors: one class per kind of answer, each carrying celeriac's error envelope
// (`{ error: { code, message, issues? } }`), so callers branch with `instanceof` or on `code`.
import type { ErrorBody, Issue } from "./errors.ts";

/** Any error answer from celeriac: the HTTP status and the envelope, as sent. */
export class CeleriacError extends Error {
  override name = "CeleriacError";
  /** HTTP status of the answer. */
  readonly status: number;
  /** The stable code of the envelope (see the README's error table), e.g. `invalid_payload`. */
  readonly code: string;
  /** Each problem by field, when the answer names them. */
  readonly issues: Issue[];
  /** The whole body, including fields beside `error` (e.g. `id` of a 409). */
  readonly body: ErrorBody;
  /** Seconds from `Retry-After`, when sent. */
  readonly retryAfter: number | undefined;
  constructor(status: number, body: ErrorBody, retryAfter?: number) {
    super(`[celeriac] ${status} ${body.error.code}: ${body.error.message}`);
    this.status = status;
    this.code = body.error.code;
    this.issues = body.error.issues ?? [];
    this.body = body;
    this.retryAfter = retryAfter;
  }
}

/** 400, 413, 415, 422: the request was refused as sent; fix it before sending again. */
export class ValidationError extends CeleriacError {
  override name = "ValidationError";
}
/** 401, 403: no API key, or one celeriac does not accept. */
export class AuthError extends CeleriacError {
  override name = "AuthError";
}
/** 404: no such task id (`code: "unknown"`), task type, schedule or route. */
export class NotFoundError extends CeleriacError {
  override name = "NotFoundError";
}
/** 409: the task is in a state that forbids it, or an idempotency key was reused. */
export class ConflictError extends CeleriacError {
  override name = "ConflictError";
}
/** 429: over a rate limit; `retryAfter` says when to try again. */
export class RateLimitError extends CeleriacError {
  override name = "RateLimitError";
}
/** 5xx: celeriac or a service behind it is unavailable (or, for 500, a bug); try again later. */
export class UnavailableError extends CeleriacError {
  override name = "UnavailableError";
}

/** celeriac could not be reached, or answered something that is not celeriac's JSON. */
export class ConnectionError extends Error {
  override name = "ConnectionError";
}

/** `wait()` gave up before the task reached a final state; `last` is the record it saw last. */
export class WaitTimeoutError extends Error {
  override name = "WaitTimeoutError";
  readonly last: unknown;
  constructor(message: string, last: unknown) {
    super(message);
    this.last = last;
  }
}

/** The error class for an error answer's status. */
export function errorFor(status: number, body: ErrorBody, retryAfter?: number): CeleriacError {
  const Kind =
    status === 401 || status === 403
      ? AuthError
      : status === 404
        ? NotFoundError
        : status === 409
          ? ConflictError
          : status === 429
            ? RateLimitError
            : status >= 500
              ? UnavailableError
              : status >= 400
                ? ValidationError
                : CeleriacError;
  return new Kind(status, body, retryAfter);
}
