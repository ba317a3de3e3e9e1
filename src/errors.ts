import type { ErrorCode } from "./error-codes.ts";

/** The JSON error body every celeriac route answers with. */
export interface ErrorBody {
  [extra: string]: unknown;
  error: { code: string; message: string; issues?: Issue[] };
}

export type ApiStatus = 400 | 401 | 403 | 404 | 409 | 410 | 413 | 415 | 422 | 429 | 503;
/** One problem with the input: where (a dot path, `payload.to.0`) and why. */
export interface Issue {
  path: string;
  message: string;
}

/** What an {@link ApiError} says besides its status. */
export interface ApiErrorOptions {
  /** A code of src/error-codes.ts. */
  code: ErrorCode;
  message: string;
  /** Each problem by field. */
  issues?: Issue[] | undefined;
  /** Top-level fields sent beside `error` (e.g. `state: "unknown"`). */
  extra?: Record<string, unknown>;
  /** Seconds after which the caller may try again (sent as `Retry-After`). */
  retryAfter?: number;
  /** Response headers sent with the error (e.g. the `RateLimit` fields of a 429). */
  headers?: Record<string, string>;
  cause?: unknown;
}

/** An error meant for the caller: a status, a stable code and a message that says why. */
export class ApiError extends Error {
  override name = "ApiError";
  readonly status: ApiStatus;
  readonly code: ErrorCode;
  readonly issues?: Issue[];
  readonly retryAfter?: number;
  readonly extra?: Record<string, unknown>;
  /** Response headers sent with the error (e.g. the `RateLimit` fields of a 429). */
  readonly headers?: Record<string, string>;
  constructor(status: ApiStatus, options: ApiErrorOptions) {
    super(options.message, options.cause === undefined ? undefined : { cause: options.cause });
    this.status = status;
    this.code = options.code;
    if (options.issues) this.issues = options.issues;
    if (options.extra) this.extra = options.extra;
    if (options.retryAfter !== undefined) this.retryAfter = options.retryAfter;
    if (options.headers) this.headers = options.headers;
  }

  toJSON(): ErrorBody {
    return {
      ...this.extra,
      error: { code: this.code, message: this.message, ...(this.issues ? { issues: this.issues } : {}) },
    };
  }
}

/** An id never seen (or expired) is reported as such: 404 and state `unknown`, never "pending". */
export function unknownId(id: string): ApiError {
  return new ApiError(404, {
    code: "unknown",
    message: `no task with id ${id} (never enqueued, or expired)`,
    extra: { id, state: "unknown" },
  });
}

/** A dependency (QStash, Redis) could not be reached or answered wrongly: 503, try again. */
export const unavailable = (service: "qstash" | "redis", cause: unknown) =>
  new ApiError(503, {
    code: `${service}_unavailable`,
    message: `[celeriac] ${service} is unavailable: ${messageOf(cause)}`,
    retryAfter: 5,
    cause,
  });

/** Thrown by a task: fail now, never retry. */
export class PermanentError extends Error {
  override name = "PermanentError";
  /** A stable machine-readable code recorded with the failure. @default "permanent" */
  readonly code: string;
  constructor(message: string, code = "permanent") {
    super(message);
    this.code = code;
  }
}

/** Thrown by a task: retry, not before `after`. */
export class RetryLater extends Error {
  override name = "RetryLater";
  /** Seconds from now until the next attempt. */
  readonly afterSeconds: number;
  readonly code: string;
  constructor(opts: { after: number | Date; message?: string; code?: string }) {
    super(opts.message ?? "retry later");
    this.afterSeconds =
      opts.after instanceof Date ? Math.max(0, Math.ceil((opts.after.getTime() - Date.now()) / 1000)) : Math.max(0, opts.after);
    this.code = opts.code ?? "retry_later";
  }
}

/**
 * Thrown by a task (or the mailer) when a provider answered "too many requests": a 429 means
 * "later", never "no". The task waits `after` seconds for room without spending one of the
 * attempts meant for real errors (see MAX_RATE_LIMIT_WAIT_S in src/rate-limit-wait.ts for the bound).
 * @example throw new RateLimited({ after: 1, message: "provider answered 429" })
 */
export class RateLimited extends RetryLater {
  override name = "RateLimited";
  constructor(opts: { after: number | Date; message?: string; code?: string }) {
    super({ code: "rate_limited", ...opts });
  }
}

/** Parses `Retry-After` (seconds or an HTTP date) into seconds from now. */
export function retryAfterSeconds(value: string | null | undefined): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
