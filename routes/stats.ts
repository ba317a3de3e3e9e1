import { Hono } from "hono";
import { requireApiKey } from "../src/auth.ts";
import { ApiError } from "../src/errors.ts";
import { relayOf, type AppEnv } from "../src/relay.ts";
import { redisIo } from "../src/store/lua.ts";
import { utcDay } from "../src/store/index.ts";
import { dayReport, reportKey } from "../src/stats.ts";

/** Today's live counters, and the stored daily reports. */
export const stats = new Hono<AppEnv>()
  .use("*", requireApiKey)
  .get("/", async (c) => c.json(await dayReport(relayOf(c).store, utcDay(Date.now()))))
  .get("/daily/:date", async (c) => {
    const date = c.req.param("date");
    if (!/^\d{4}-\d{2}-\d{2}$/.test(date) || Number.isNaN(Date.parse(date))) {
      throw new ApiError(400, "invalid_date", `"${date}" is not a date like 2026-11-25`);
    }
    const store = relayOf(c).store;
    const raw = await redisIo(() => store.redis.get<string>(reportKey(store, date)));
    if (!raw) throw new ApiError(404, "no_report", `no daily report for ${date} (the daily-stats task stores one after 00:05 UTC the next day)`);
    return c.json(JSON.parse(raw));
  });
