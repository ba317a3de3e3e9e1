// Item 8 of issue 15: every built-in task states a retry policy suited to it, so no task waits on
// an uncapped backoff (QStash's own e^(2.5n) puts the 4th retry about 6 h out).
import { describe, expect, it } from "vitest";
import { DEFAULT_RETRY_DELAY, retryDelayExpression, retryWaitMs } from "../src/retry-delay.ts";
import { tasks } from "../tasks/index.ts";

/** The waits before each retry, seconds. */
const waits = (expression: string, retries: number) => Array.from({ length: retries }, (_, n) => retryWaitMs(expression, n)! / 1000);

describe("built-in retry policies", () => {
  // Each task's whole retry window, as its file states it (seconds): short for mail that matters
  // now, longer for receivers that may be mid-deploy, short for a report that only reads Redis.
  const WINDOW_S: Record<string, number> = {
    "send-email": 16 * 60,
    webhook: 45 * 60,
    callback: 45 * 60,
    "daily-stats": 16 * 60,
    verification: 90,
  };

  it.each(tasks.map((t) => [t.name, t] as const))("%s states its own policy, within its window", (name, t) => {
    expect(t.retryDelay, `${name} must state a retryDelay`).not.toBe(retryDelayExpression(DEFAULT_RETRY_DELAY));
    const w = waits(t.retryDelay, t.retries);
    expect(w.every((s) => Number.isFinite(s) && s > 0)).toBe(true);
    expect(Math.max(...w)).toBeLessThanOrEqual(30 * 60); // no single wait beyond 30 minutes
    const total = w.reduce((a, b) => a + b, 0);
    expect(total).toBeLessThanOrEqual(WINDOW_S[name]!);
    expect(total).toBeGreaterThanOrEqual(WINDOW_S[name]! / 2); // and not so short that a blip fails it
  });

  it("send-email retries soon: 5, 10, 20, 40, 80, 160, 300, 300 s", () => {
    const t = tasks.find((x) => x.name === "send-email")!;
    expect(waits(t.retryDelay, t.retries)).toEqual([5, 10, 20, 40, 80, 160, 300, 300]);
  });
});
