import { Hono } from "hono";
import { QstashError } from "@upstash/qstash";
import { ApiError, unavailable } from "../src/errors.ts";
import { relayOf, type AppEnv } from "../src/relay.ts";
import { SCHEDULE_PREFIX, scheduleStatus, syncSchedules } from "../src/schedules.ts";

/** QStash answers these for a request it will not act on; anything else means it is unreachable. */
const qstash = <T>(work: Promise<T>): Promise<T> =>
  work.catch((err: unknown) => {
    if (err instanceof QstashError && err.status === 404) throw new ApiError(404, { code: "unknown_schedule", message: err.message });
    throw unavailable("qstash", err);
  });

/** Cron schedules: declared vs. live, sync, pause and resume. */
export const schedules = new Hono<AppEnv>()
  .get("/", async (c) => c.json(await qstash(scheduleStatus(relayOf(c)))))
  .post("/sync", async (c) => c.json(await qstash(syncSchedules(relayOf(c)))))
  .post("/:id/:action{pause|resume}", async (c) => {
    const id = c.req.param("id");
    if (!id.startsWith(SCHEDULE_PREFIX)) {
      throw new ApiError(404, { code: "unknown_schedule", message: `"${id}" is not a celeriac schedule (ids start with ${SCHEDULE_PREFIX})` });
    }
    const client = relayOf(c).services.qstash.schedules;
    await qstash(client.get(id));
    await qstash(c.req.param("action") === "pause" ? client.pause({ schedule: id }) : client.resume({ schedule: id }));
    const live = await qstash(client.get(id));
    return c.json({ id, paused: live.isPaused });
  });
