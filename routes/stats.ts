import { Hono } from "hono";
import { ApiError } from "../src/errors.ts";
import { type AppEnv, relayOf } from "../src/relay.ts";
import { dayReport, storedReport } from "../src/stats.ts";
import { utcDay } from "../src/store/index.ts";

/** Today's live counters, and the stored daily reports. */
export const stats = new Hono<AppEnv>()
  .get("/", async (c) => c.json(await dayReport(relayOf(c).store, utcDay(Date.now()))))
  .get("/daily/:date", async (c) => {
    const date = c.req.param("date");
    if (!/^\d{4}-\d{2}-\d{2}$/.test(date) || Number.isNaN(Date.parse(date))) {
      throw new ApiError(400, { code: "invalid_date", message: `"${date}" is not a date like 2026-11-25` });
    }
    const report = await storedReport(relayOf(c).store, date);
    if (!report) {
      throw new ApiError(404, {
        code: "no_report",
        message: `no daily report for ${date} (the daily-stats task stores one after 00:05 UTC the next day)`,
      });
    }
    return c.json(report);
  });
