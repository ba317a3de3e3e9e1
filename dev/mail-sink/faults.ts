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

/** Fixed one-second windows per API key, like Resend's default 5 requests/s. */
export class RateLimiter {
  #windows = new Map<string, { start: number; used: number }>();
  readonly limit: number;

  constructor(limit: number) {
    this.limit = limit;
  }

  hit(key: string, now = Date.now()): { limited: boolean; headers: Record<string, string> } {
    let w = this.#windows.get(key);
    if (!w || now - w.start >= 1000) {
      w = { start: now, used: 0 };
      this.#windows.set(key, w);
    }
    w.used += 1;
    const limited = w.used > this.limit;
    const reset = String(Math.max(1, Math.ceil((w.start + 1000 - now) / 1000)));
    const headers: Record<string, string> = {
      "ratelimit-limit": String(this.limit),
      "ratelimit-remaining": String(Math.max(0, this.limit - w.used)),
      "ratelimit-reset": reset,
    };
    if (limited) headers["retry-after"] = reset;
    return { limited, headers };
  }
}
