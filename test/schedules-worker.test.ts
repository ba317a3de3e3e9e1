// Declared schedules through the Worker in workerd and the stack's broker: sync, status, and a
// firing of the built-in daily-stats schedule that becomes an ordinary task with a report.
import { describe, expect, it } from "vitest";
import { scheduledRunId } from "../src/ids.ts";
import { utcDay } from "../src/store/index.ts";
import { call, settle, stack } from "./helpers/api.ts";

const DAILY = "celeriac-daily-stats-daily";

describe("schedules in workerd", () => {
  it("syncs the declared schedules into the broker, then changes nothing", async () => {
    const first = await call("POST", "/v1/schedules/sync");
    expect(first.status).toBe(200);
    expect([...first.body.created, ...first.body.unchanged]).toContain(DAILY);
    const second = await call("POST", "/v1/schedules/sync");
    expect(second.body).toMatchObject({ created: [], updated: [], deleted: [], unchanged: [DAILY] });
    const status = await call("GET", "/v1/schedules");
    expect(status.body.schedules).toEqual([
      expect.objectContaining({
        id: DAILY,
        task: "daily-stats",
        cron: "5 0 * * *",
        timezone: "UTC",
        drift: [],
        live: expect.objectContaining({ cron: "5 0 * * *", paused: false }),
      }),
    ]);
  });

  it("a firing is a task record with its schedule id, and stores yesterday's report", async () => {
    const fired = await fetch(`${stack().broker}/_broker/schedules/${DAILY}/trigger`, {
      method: "POST",
      headers: { authorization: `Bearer ${stack().env.QSTASH_TOKEN}` },
    });
    expect(fired.status).toBe(200);
    const { messageId } = await fired.json();
    const yesterday = utcDay(Date.now() - 86_400_000);
    const run = await settle(await scheduledRunId(messageId), ["succeeded", "failed"]);
    expect(run).toMatchObject({ task: "daily-stats", state: "succeeded", scheduleId: DAILY, result: { date: yesterday } });
    const report = await call("GET", `/v1/stats/daily/${yesterday}`);
    expect(report.status).toBe(200);
    expect(report.body.date).toBe(yesterday);
  });
});
