/**
 * How long QStash waits before retrying a failed attempt: QStash's own `Upstash-Retry-Delay`
 * expression (milliseconds over `retried`, 0 for the first retry), or a simple exponential
 * backoff in seconds that celeriac writes as such an expression.
 *
 * @default { base: 10, factor: 2, max: 3600 } (10 s, 20 s, 40 s … capped at 1 h)
 * @example { base: 5, factor: 3, max: 600 } or "min(60000, 1000 * pow(2, retried))"
 */
export type RetryDelay = string | Backoff;

/** `base * factor^retried` seconds, at most `max` seconds. */
export interface Backoff {
  /** Seconds before the first retry. */
  base: number;
  /** Growth per retry. @default 2 */
  factor?: number;
  /** Longest wait, seconds. @default 3600 */
  max?: number;
}

export const DEFAULT_RETRY_DELAY: Required<Backoff> = { base: 10, factor: 2, max: 3600 };

/**
 * Longest wait a backoff may name (s): a year, QStash's longest delay. Past it a due time is not
 * a date JavaScript can show (the record's `nextAttemptAt` failed every read of the task).
 */
const MAX_WAIT_S = 365 * 86_400;

// The expressions celeriac writes, so the wait before the next attempt can be read back from one.
const OURS = /^min\((\d+(?:\.\d+)?), (\d+(?:\.\d+)?) \* pow\((\d+(?:\.\d+)?), retried\)\)$/;
const EXPRESSION = /^[\d\s.+\-*/%(),a-z]+$/;

/** Why a retry delay is not usable, or undefined. */
export function retryDelayProblem(r: unknown): string | undefined {
  if (typeof r === "string") {
    return r.trim() && r.length <= 256 && EXPRESSION.test(r)
      ? undefined
      : 'must be a QStash retry-delay expression such as "1000 * pow(2, retried)"';
  }
  if (r === null || typeof r !== "object") return "must be a QStash expression or { base, factor, max } in seconds";
  const { base, factor = 2, max = DEFAULT_RETRY_DELAY.max, ...rest } = r as Backoff;
  if (Object.keys(rest).length) return `has unknown fields: ${Object.keys(rest).join(", ")}`;
  const ok = (n: unknown, min: number) => typeof n === "number" && Number.isFinite(n) && n >= min;
  if (!ok(base, 0)) return "base must be seconds >= 0";
  if (!ok(factor, 1)) return "factor must be a number >= 1";
  if (!ok(max, base)) return "max must be seconds >= base";
  if (max > MAX_WAIT_S) return `max must be at most ${MAX_WAIT_S} seconds (a year)`;
  return undefined;
}

/** The `Upstash-Retry-Delay` expression (milliseconds) of a retry delay. */
export function retryDelayExpression(r: RetryDelay = DEFAULT_RETRY_DELAY): string {
  if (typeof r === "string") return r.trim();
  const { base, factor = DEFAULT_RETRY_DELAY.factor, max = DEFAULT_RETRY_DELAY.max } = r;
  return `min(${Math.round(max * 1000)}, ${Math.round(base * 1000)} * pow(${factor}, retried))`;
}

/** Milliseconds QStash waits before retry number `retried` (0-based), when the expression is one celeriac wrote. */
export function retryWaitMs(expression: string, retried: number): number | undefined {
  const m = OURS.exec(expression);
  if (!m) return undefined;
  const ms = Math.min(Number(m[1]), Number(m[2]) * Number(m[3]) ** retried);
  // An expression of that shape given by hand may name any wait: past a year it is not shown.
  return ms <= MAX_WAIT_S * 1000 ? ms : undefined;
}
