/** The JSON error body every celeriac route answers with. */
export interface ErrorBody {
  [extra: string]: unknown;
  error: { code: string; message: string; issues?: Issue[] };
}

export type ApiStatus = 400 | 401 | 403 | 404 | 409 | 413 | 415 | 422 | 429 | 503;
/** One problem with the input: where (a dot path, `payload.to.0`) and why. */
export interface Issue {
  path: string;
  message: string;
}

/** An error meant for the caller: a status, a stable code and a message that says why. */
export class ApiError extends Error {
  override name = "ApiError";
  readonly status: ApiStatus;
  readonly code: string;
  readonly issues?: Issue[];
  /** Seconds after which the caller may try again (sent as `Retry-After`). */
  readonly retryAfter?: number;
  /** Top-level fields sent beside `error` (e.g. `state: "unknown"`). */
  extra?: Record<string, unknown>;
  constructor(status: ApiStatus, code: string, message: string, issues?: Issue[], retryAfter?: number) {
    super(message);
    this.status = status;
    this.code = code;
    if (issues) this.issues = issues;
    if (retryAfter !== undefined) this.retryAfter = retryAfter;
  }

  toJSON(): ErrorBody {
    return {
      ...this.extra,
      error: { code: this.code, message: this.message, ...(this.issues ? { issues: this.issues } : {}) },
    };
  }
}

/** A dependency (QStash, Redis) could not be reached or answered wrongly: 503, try again. */
export class UnavailableError extends ApiError {
  constructor(service: string, cause: unknown) {
    super(503, `${service}_unavailable`, `[celeriac] ${service} is unavailable: ${messageOf(cause)}`, undefined, 5);
  }
}

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

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
