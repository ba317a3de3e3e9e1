/** How the next matching send misbehaves. */
export type FaultMode = "500" | "429" | "delay" | "drop" | "accept-then-drop";

export interface FaultSpec {
  mode: FaultMode;
  /** How many consecutive sends (`POST /emails` or `/emails/batch`) it hits. @default 1 */
  count?: number;
  /** Seconds sent in `retry-after` for mode "429". @default 1 */
  retryAfter?: number;
  /** Milliseconds to wait before handling, for mode "delay". @default 1000 */
  delayMs?: number;
}

export interface Fault {
  mode: FaultMode;
  remaining: number;
  retryAfter: number;
  delayMs: number;
}

const MODES: readonly string[] = ["500", "429", "delay", "drop", "accept-then-drop"];

/** Parses a fault from the control API's JSON; a string is the reason it was refused. */
export function parseFault(input: unknown): Fault | string {
  if (typeof input !== "object" || input === null) return "expected a JSON object {mode, count?, retryAfter?, delayMs?}";
  const { mode, count = 1, retryAfter = 1, delayMs = 1000 } = input as Record<string, unknown>;
  if (typeof mode !== "string" || !MODES.includes(mode)) return `mode must be one of ${MODES.join(", ")}`;
  if (!Number.isInteger(count) || (count as number) < 1) return "count must be a positive integer";
  if (typeof retryAfter !== "number" || !(retryAfter >= 0)) return "retryAfter must be a non-negative number of seconds";
  if (typeof delayMs !== "number" || !(delayMs >= 0)) return "delayMs must be a non-negative number of milliseconds";
  return { mode: mode as FaultMode, remaining: count as number, retryAfter, delayMs };
}

/** Faults apply in the order they were queued, each to its next `count` sends. */
export class FaultQueue {
  #queue: Fault[] = [];

  push(fault: Fault): void {
    this.#queue.push(fault);
  }

  take(): Fault | null {
    const head = this.#queue[0];
    if (!head) return null;
    head.remaining -= 1;
    if (head.remaining <= 0) this.#queue.shift();
    return { ...head };
  }

  list(): Fault[] {
    return this.#queue.map((f) => ({ ...f }));
  }

  clear(): void {
    this.#queue = [];
  }
}

/**
 * Resend's rate limit: at most `limit` requests per API key in any sliding window of `windowMs`
 * (Resend: 5 per second per team by default). Only requests let through take room in the window.
 * The headers are the ones Resend sends: `ratelimit-limit`, `ratelimit-remaining`,
 * `ratelimit-reset` (seconds until room frees up) and, on a 429, `retry-after` (seconds).
 */
export class RateLimiter {
  #seen = new Map<string, number[]>();
  readonly limit: number;
  readonly windowMs: number;

  /** `limit` 0 switches the limit off (no 429, no headers). */
  constructor(limit: number, windowMs = 1000) {
    this.limit = limit;
    this.windowMs = windowMs;
  }

  hit(key: string, now = Date.now()): { limited: boolean; headers: Record<string, string> } {
    if (this.limit <= 0) return { limited: false, headers: {} };
    let times = this.#seen.get(key);
    if (!times) this.#seen.set(key, (times = []));
    while (times.length && times[0]! <= now - this.windowMs) times.shift();
    const limited = times.length >= this.limit;
    if (!limited) times.push(now);
    // Room frees up when the oldest request in the window leaves it.
    const reset = String(Math.max(1, Math.ceil((times[0]! + this.windowMs - now) / 1000)));
    const headers: Record<string, string> = {
      "ratelimit-limit": String(this.limit),
      "ratelimit-remaining": String(Math.max(0, this.limit - times.length)),
      "ratelimit-reset": reset,
    };
    if (limited) headers["retry-after"] = reset;
    return { limited, headers };
  }
}
