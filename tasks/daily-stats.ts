import * as v from "valibot";
import { REPORT_TTL_S, dayReport, reportKey, type DayReport } from "../src/stats.ts";
import { utcDay } from "../src/store/index.ts";
import { defineTask } from "../src/task.ts";

const DAY_MS = 86_400_000;

/** Builds a UTC day's report (yesterday by default), stores it, and mails it when configured. */
export default defineTask({
  name: "daily-stats",
  input: v.strictObject({
    date: v.optional(v.pipe(v.string(), v.isoDate("must be a date like 2026-11-25"))),
  }),
  retries: 3,
  timeout: 60,
  // The counters of a day are complete a few minutes after midnight UTC.
  schedules: [{ name: "daily", cron: "5 0 * * *", payload: {} }],
  async run({ date }, ctx) {
    const day = date ?? utcDay(Date.now() - DAY_MS);
    const report = await dayReport(ctx.store, day);
    await ctx.store.redis.set(reportKey(ctx.store, day), JSON.stringify(report), { ex: REPORT_TTL_S });
    const to = ctx.config.statsEmail;
    let email: string | undefined;
    if (to) {
      // Keyed by day and address: a retry of this task, or a second run for the same day, mails once.
      const sent = await ctx.enqueue("send-email", { to, subject: `celeriac: statistics for ${day}`, text: asText(report) }, {
        idempotencyKey: `daily-stats:${day}:${to}`,
      });
      email = sent.id;
    }
    return { date: day, totals: report.totals, ...(email ? { emailTask: email } : {}) };
  },
});

function asText(r: DayReport): string {
  const head = ["task", "enqueued", "succeeded", "failed", "cancelled", "retries", "p50 ms", "p95 ms"];
  const rows = Object.entries(r.tasks).map(([name, t]) => [name, t.enqueued, t.succeeded, t.failed, t.cancelled, t.retries, t.p50Ms ?? "-", t.p95Ms ?? "-"].map(String));
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [`Tasks on ${r.date} (UTC)`, "", line(head), ...rows.map(line), "", `total enqueued ${r.totals.enqueued}, succeeded ${r.totals.succeeded}, failed ${r.totals.failed}`].join("\n");
}
