/** Duration parsing for QStash headers (Upstash-Delay, Upstash-Timeout, periods) and Retry-After. */

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/**
 * Parses compound durations like `20s`, `1d10h30m`, `1.5s`, Go's `6m5s` or `300ms`.
 * A bare number means seconds. Returns milliseconds, or undefined when malformed.
 */
export function parseDuration(input: string): number | undefined {
  const text = input.trim();
  if (text === "") return undefined;
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
  const part = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = part.exec(text); m; m = part.exec(text)) {
    total += Number(m[1]) * (UNIT_MS[m[2] ?? ""] ?? Number.NaN);
    consumed = part.lastIndex;
  }
  if (consumed !== text.length || !Number.isFinite(total)) return undefined;
  return total;
}

const ONE_DAY_MS = 86_400_000;

/**
 * Reads a Retry-After value: integer seconds, an HTTP date or a Go duration.
 * Returns the wait in milliseconds (0 = now), or undefined when absent, malformed or over a day
 * (the caller then falls back to its default backoff, as QStash does).
 */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (text === "") return undefined;
  let ms: number | undefined;
  if (/^\d+$/.test(text)) ms = Number(text) * 1000;
  else if (/^\d+(\.\d+)?(ns|us|µs|ms|s|m|h|d)/.test(text)) ms = parseDuration(text);
  else {
    const date = Date.parse(text);
    if (!Number.isNaN(date)) ms = Math.max(0, date - now);
  }
  if (ms === undefined || ms > ONE_DAY_MS) return undefined;
  return ms;
}

/** QStash's default backoff before retry n (n = 1 for the first retry): min(1 day, e^(2.5n)) s. */
export function defaultBackoffMs(n: number): number {
  return Math.min(86_400, Math.exp(2.5 * n)) * 1000;
}

/** Human form of a wait for log lines: 12.2s, 3m, 250ms. */
export function formatWait(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)}s`;
  if (ms < 3_600_000) return `${(ms / 60_000).toFixed(1)}m`;
  return `${(ms / 3_600_000).toFixed(1)}h`;
}
