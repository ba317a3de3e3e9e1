// Unit tests of pure pieces: durations, cron checks, task definitions, the stats report, ids,
// config parsing, and how Resend's answers map to outcomes (against a stub of the SDK's reply).
import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { cronProblem, isTimeZone } from "../src/cron.ts";
import { toSeconds } from "../src/durations.ts";
import { ConfigError, loadConfig, loadTaskEnv } from "../src/env.ts";
import { PermanentError, RetryLater, retryAfterSeconds } from "../src/errors.ts";
import { newTaskId, scheduledRunId, TASK_ID } from "../src/ids.ts";
import { mailerFor } from "../src/mail.ts";
import { retryWaitMs } from "../src/retry-delay.ts";
import { buildReport } from "../src/stats.ts";
import { defineTask } from "../src/task.ts";

describe("durations", () => {
  it.each([
    [90, 90],
    ["90", 90],
    ["90s", 90],
    ["1h30m", 5400],
    ["1.5d", 129600],
    ["250ms", 0.25],
    ["2m5s", 125],
  ] as const)("%s → %s s", (input, seconds) => expect(toSeconds(input)).toBe(seconds));
  it.each(["soon", "", "1x", "-5", "5 s", "h1"])("refuses %j", (input) => expect(toSeconds(input)).toBeUndefined());
  it("refuses negative and non-finite numbers", () => {
    expect(toSeconds(-1)).toBeUndefined();
    expect(toSeconds(Number.POSITIVE_INFINITY)).toBeUndefined();
  });
});

describe("cron", () => {
  it.each(["* * * * *", "5 0 * * *", "*/15 9-17 * * MON-FRI", "0 0 1,15 JAN,jul 0", "0 12 * * 7"])("accepts %s", (c) =>
    expect(cronProblem(c)).toBeUndefined(),
  );
  it.each([
    ["* * * *", /5 fields/],
    ["60 * * * *", /minute/],
    ["* 24 * * *", /hour/],
    ["* * 0 * *", /day of month/],
    ["* * * 13 *", /month/],
    ["* * * * 8", /day of week/],
    ["*/0 * * * *", /step/],
    ["5-1 * * * *", /backwards/],
    ["a * * * *", /minute/],
  ])("refuses %s", (c, why) => expect(cronProblem(c)).toMatch(why));
  it("knows time zones", () => {
    expect(isTimeZone("Europe/Berlin")).toBe(true);
    expect(isTimeZone("Mars/Olympus")).toBe(false);
  });
});

describe("defineTask", () => {
  const base = { input: v.object({}), run: async () => null };
  it("applies defaults", () => {
    expect(defineTask({ name: "a-task", ...base })).toMatchObject({ retries: 3, timeout: 30, delay: 0, resultTtl: 604800, schedules: [] });
  });
  it("refuses bad names and options, naming the task", () => {
    expect(() => defineTask({ name: "Bad_Name", ...base })).toThrow(/"Bad_Name".*kebab/);
    expect(() => defineTask({ name: "x", retries: -1, ...base })).toThrow(/"x": retries/);
    expect(() => defineTask({ name: "x", timeout: 0, ...base })).toThrow(/timeout/);
    expect(() =>
      defineTask({
        name: "x",
        ...base,
        schedules: [
          { name: "a", cron: "* * * * *", payload: {} },
          { name: "a", cron: "* * * * *", payload: {} },
        ],
      }),
    ).toThrow(/twice/);
    // With the 20 an enqueue may add, a message carries at most the 50 paths its delivery accepts.
    expect(() => defineTask({ name: "x", ...base, redact: Array.from({ length: 31 }, (_, i) => `f${i}`) })).toThrow(
      /"x": redact holds at most 30 paths/,
    );
    expect(defineTask({ name: "x", ...base, redact: Array.from({ length: 30 }, (_, i) => `f${i}`) }).redact).toHaveLength(30);
  });
  it("writes the retry policy as QStash's expression, 10 s doubling up to 1 h by default", () => {
    expect(defineTask({ name: "a-task", ...base }).retryDelay).toBe("min(3600000, 10000 * pow(2, retried))");
    expect(defineTask({ name: "a-task", ...base, retryDelay: { base: 1.5, factor: 3 } }).retryDelay).toBe(
      "min(3600000, 1500 * pow(3, retried))",
    );
    expect(defineTask({ name: "a-task", ...base, retryDelay: "5000" }).retryDelay).toBe("5000");
    expect(() => defineTask({ name: "x", ...base, retryDelay: { base: 10, max: 1 } })).toThrow(/"x": retryDelay max/);
    expect(retryWaitMs("min(3600000, 10000 * pow(2, retried))", 0)).toBe(10_000);
    expect(retryWaitMs("min(3600000, 10000 * pow(2, retried))", 3)).toBe(80_000);
    expect(retryWaitMs("min(3600000, 10000 * pow(2, retried))", 20)).toBe(3_600_000);
    expect(retryWaitMs("1000 * retried", 2)).toBeUndefined();
    // Waits no date can show are refused, or not shown.
    expect(() => defineTask({ name: "x", ...base, retryDelay: { base: 1e17, max: 1e17 } })).toThrow(
      /"x": retryDelay max must be at most 31536000 seconds/,
    );
    expect(retryWaitMs("min(100000000000000000000, 100000000000000000000 * pow(2, retried))", 0)).toBeUndefined();
  });
});

describe("ids", () => {
  it("makes task ids that sort by creation time", () => {
    const a = newTaskId(1_700_000_000_000);
    const b = newTaskId(1_700_000_000_001);
    expect(a).toMatch(TASK_ID);
    expect(a.slice(0, 14) < b.slice(0, 14)).toBe(true);
  });
  it("derives one stable id per scheduled firing", async () => {
    expect(await scheduledRunId("msg_1")).toBe(await scheduledRunId("msg_1"));
    expect(await scheduledRunId("msg_1")).not.toBe(await scheduledRunId("msg_2"));
    expect(await scheduledRunId("msg_1")).toMatch(TASK_ID);
  });
});

describe("stats report", () => {
  it("folds counters into per-task figures, totals and percentiles", () => {
    const r = buildReport("2026-11-25", {
      "send-email:enqueued": "10",
      "send-email:succeeded": "8",
      "send-email:failed": "1",
      "send-email:retries": "3",
      "send-email:attempts": "12",
      "send-email:d4": "5",
      "send-email:d7": "4",
      "web-hook:enqueued": "2",
      "web-hook:cancelled": "2",
    });
    expect(r.tasks["send-email"]).toEqual({
      enqueued: 10,
      attempts: 12,
      succeeded: 8,
      failed: 1,
      cancelled: 0,
      retries: 3,
      p50Ms: 100,
      p95Ms: 1000,
    });
    expect(r.tasks["web-hook"]).toMatchObject({ enqueued: 2, cancelled: 2, p50Ms: null });
    expect(r.totals).toEqual({ enqueued: 12, attempts: 12, succeeded: 8, failed: 1, cancelled: 2, retries: 3 });
  });
});

describe("config", () => {
  it("names every missing or malformed variable", () => {
    let err: unknown;
    try {
      loadConfig({ CELERIAC_PUBLIC_URL: "nope", CELERIAC_API_KEYS: "short" });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const text = (err as ConfigError).problems.join("\n");
    for (const name of ["CELERIAC_PUBLIC_URL", "CELERIAC_API_KEYS", "QSTASH_TOKEN", "UPSTASH_REDIS_REST_URL", "RESEND_API_KEY"]) {
      expect(text).toContain(name);
    }
  });

  it("names a task's malformed variable without its value, which may be a secret", () => {
    const task = {
      name: "send-sms",
      env: v.object({ SMS_TOKEN: v.pipe(v.string(), v.regex(/^sk_/)), SMS_RETRIES: v.picklist(["1", "2"]) }),
    };
    const r = loadTaskEnv({ SMS_TOKEN: "tok-4f9a-secret", SMS_RETRIES: "tok-4f9a-other" }, task);
    expect(r).toEqual({
      ok: false,
      problems: [
        'task "send-sms": SMS_TOKEN: Invalid format: Expected /^sk_/',
        'task "send-sms": SMS_RETRIES: Invalid type: Expected ("1" | "2")',
      ],
    });
  });

  it("reports a task's env schema that throws as that task's problem, without the value", () => {
    const task = {
      name: "send-sms",
      env: v.object({
        SMS_ROUTES: v.pipe(
          v.string(),
          v.transform((s) => JSON.parse(s) as unknown),
        ),
      }),
    };
    expect(loadTaskEnv({ SMS_ROUTES: "tok-4f9a-secret" }, task)).toEqual({
      ok: false,
      problems: ['task "send-sms": its env schema threw a SyntaxError on one of its variables'],
    });
    expect(loadTaskEnv({ SMS_ROUTES: '{"a":1}' }, task)).toEqual({ ok: true, env: { SMS_ROUTES: { a: 1 } } });
  });
});

describe("Resend's answers", () => {
  const reply = (r: unknown) => ({ emails: { send: async () => r } }) as never;
  const email = { from: "a@b.co", to: "c@d.co", subject: "s", text: "t" };
  const none = async () => [];
  it("returns the email id", async () => {
    await expect(mailerFor(reply({ data: { id: "e1" }, error: null, headers: {} }), "k", none)(email)).resolves.toEqual({ id: "e1" });
  });
  it("maps a 422 to a permanent failure, a 429 to retry-after, a 5xx or network error to a retry", async () => {
    const err = (statusCode: number | null, name: string, headers = {}) =>
      reply({ data: null, error: { statusCode, name, message: "m" }, headers });
    await expect(mailerFor(err(422, "validation_error"), "k", none)(email)).rejects.toBeInstanceOf(PermanentError);
    const limited = await mailerFor(err(429, "rate_limit_exceeded", { "retry-after": "7" }), "k", none)(email).catch((e) => e);
    expect(limited).toBeInstanceOf(RetryLater);
    expect(limited.afterSeconds).toBe(7);
    for (const e of [err(500, "internal_server_error"), err(null, "application_error")]) {
      const thrown = await mailerFor(e, "k", none)(email).catch((x) => x);
      expect(thrown).toBeInstanceOf(Error);
      expect(thrown).not.toBeInstanceOf(PermanentError);
      expect(thrown).not.toBeInstanceOf(RetryLater);
    }
  });
  it("gives each email of a task its own stable idempotency key", async () => {
    const keys: string[] = [];
    const resend = {
      emails: {
        send: async (_: unknown, o: { idempotencyKey: string }) => (
          keys.push(o.idempotencyKey), { data: { id: "x" }, error: null, headers: {} }
        ),
      },
    } as never;
    const mail = mailerFor(resend, "tsk_1", none);
    await mail(email);
    await mail(email);
    expect(keys).toEqual(["tsk_1", "tsk_1/1"]);
  });
  it("tags each email with its task, and refuses suppressed recipients before calling Resend", async () => {
    const sent: any[] = [];
    const resend = { emails: { send: async (e: unknown) => (sent.push(e), { data: { id: "x" }, error: null, headers: {} }) } } as never;
    const suppressed = async (addresses: string[]) =>
      addresses.includes("gone@d.co")
        ? [{ address: "gone@d.co", reason: "bounced" as const, at: "2026-11-29T00:00:00.000Z", taskId: "tsk_0", emailId: "e0" }]
        : [];
    const mail = mailerFor(resend, "tsk_1", suppressed);
    await mail({
      ...email,
      tags: [
        { name: "kind", value: "order" },
        { name: "celeriac_task", value: "forged" },
      ],
    });
    expect(sent[0].tags).toEqual([
      { name: "kind", value: "order" },
      { name: "celeriac_task", value: "tsk_1" },
    ]);
    const refused = await mail({ ...email, cc: ["Gone <GONE@d.co>"] }).catch((e) => e);
    expect(refused).toBeInstanceOf(PermanentError);
    expect(refused.code).toBe("suppressed");
    expect(refused.message).toContain("gone@d.co (bounced");
    expect(sent).toHaveLength(1);
    await mail({ ...email, to: "gone@d.co" }, { ignoreSuppression: true });
    expect(sent).toHaveLength(2);
  });
  it("parses Retry-After as seconds or a date", () => {
    expect(retryAfterSeconds("12")).toBe(12);
    expect(retryAfterSeconds(new Date(Date.now() + 5_000).toUTCString())).toBeGreaterThanOrEqual(4);
    expect(retryAfterSeconds("soon")).toBeUndefined();
  });
});

describe("task registry", () => {
  it("registers every file in tasks/ under its file name", async () => {
    const { readdirSync } = await import("node:fs");
    const { tasks } = await import("../tasks/index.ts");
    const files = readdirSync(new URL("../tasks/", import.meta.url))
      .filter((f) => f.endsWith(".ts") && f !== "index.ts")
      .map((f) => f.replace(/\.ts$/, ""))
      .sort();
    expect(tasks.map((t) => t.name).sort()).toEqual(files);
  });
});

describe("rate-limit waits", () => {
  it("wait Retry-After (at least 1 s) plus a random part that grows with the time waited, capped", async () => {
    const { roomAfter, mayWait, MAX_RATE_LIMIT_WAIT_S } = await import("../src/rate-limit-wait.ts");
    expect(roomAfter(1, 0, 0)).toBe(1);
    expect(roomAfter(1, 0, 1)).toBe(2);
    expect(roomAfter(0, 0, 0)).toBe(1);
    expect(roomAfter(2, 10, 1)).toBe(12);
    expect(roomAfter(1, 10_000, 1)).toBe(61);
    expect(mayWait(undefined, 5)).toBe(true);
    expect(mayWait(MAX_RATE_LIMIT_WAIT_S - 1, 2)).toBe(false);
  });

  it("qstashDelay keeps fractions of a second (the client would round 0.2 to 0s)", async () => {
    const { qstashDelay } = await import("../src/queue.ts");
    expect(qstashDelay(0.2)).toBe("0.2s");
    expect(qstashDelay(1.2345)).toBe("1.235s");
  });
});
