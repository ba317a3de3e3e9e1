import { Hono } from "hono";
import { type AppEnv, relayOf } from "../src/relay.ts";
import { scheduleStatus, setPaused, syncSchedules, viaQstash } from "../src/schedules.ts";

/** Cron schedules: declared vs. live, sync, pause and resume. */
export const schedules = new Hono<AppEnv>()
  .get("/", async (c) => c.json(await viaQstash(scheduleStatus(relayOf(c)))))
  .post("/sync", async (c) => c.json(await viaQstash(syncSchedules(relayOf(c)))))
  .post("/:id/:action{pause|resume}", async (c) =>
    c.json(await setPaused(relayOf(c), c.req.param("id"), c.req.param("action") === "pause")),
  );
