import * as v from "valibot";
import { type DayReport, defineTask, utcDay } from "../src/task.ts";
import sendEmail from "./send-email.ts";

const DAY_MS = 86_400_000;
/** How long a stored report is kept (s): about 13 months. `GET /v1/stats/daily/:date` reads it. */
const REPORT_TTL_S = 400 * 86_400;

/** Builds a UTC day's report (yesterday by default), stores it, and mails it when configured. */
export default defineTask({
  name: "daily-stats",
  input: v.strictObject({
    date: v.optional(v.pipe(v.string(), v.isoDate("must be a date like 2026-11-25"))),
  }),
  env: v.object({
    /** Where the report is mailed; unset or empty for nowhere. */
    CELERIAC_STATS_EMAIL: v.optional(
      v.union([v.literal(""), v.pipe(v.string(), v.email("CELERIAC_STATS_EMAIL must be an email address"))]),
      "",
    ),
  }),
  // It only reads Redis and stores a report: a failure is Redis being briefly away. Retry for
  // about a quarter of an hour (30, 60, 120, 240, 480 s), well before the next day's run.
  retries: 5,
  retryDelay: { base: 30, factor: 2, max: 600 },
  timeout: 60,
  // The counters of a day are complete a few minutes after midnight UTC.
  schedules: [{ name: "daily", cron: "5 0 * * *", payload: {} }],
  async run({ date }, ctx) {
    const day = date ?? utcDay(Date.now() - DAY_MS);
    const report = await ctx.stats.day(day);
    // The API reads it from here (src/stats.ts, storedReport).
    await ctx.kv.set(`report:${day}`, report, { ttl: REPORT_TTL_S });
    const to = ctx.env.CELERIAC_STATS_EMAIL;
    let email: string | undefined;
    if (to) {
      // Keyed by day and address: a retry of this task, or a second run for the same day, mails once.
      const sent = await ctx.enqueue(
        sendEmail,
        { to, subject: `celeriac: statistics for ${day}`, text: asText(report) },
        {
          idempotencyKey: `daily-stats:${day}:${to}`,
        },
      );
      email = sent.id;
    }
    return { date: day, totals: report.totals, ...(email ? { emailTask: email } : {}) };
  },
});

function asText(r: DayReport): string {
  const head = ["task", "enqueued", "succeeded", "failed", "cancelled", "retries", "p50 ms", "p95 ms"];
  const rows = Object.entries(r.tasks).map(([name, t]) =>
    [name, t.enqueued, t.succeeded, t.failed, t.cancelled, t.retries, t.p50Ms ?? "-", t.p95Ms ?? "-"].map(String),
  );
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [
    `Tasks on ${r.date} (UTC)`,
    "",
    line(head),
    ...rows.map(line),
    "",
    `total enqueued ${r.totals.enqueued}, succeeded ${r.totals.succeeded}, failed ${r.totals.failed}`,
  ].join("\n");
}
