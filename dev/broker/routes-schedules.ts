/** /v2/schedules: create (upsert by Upstash-Schedule-Id), list, get, delete, pause, resume. */
import { type Core, type Ctx, fail, ok, type Reply } from "./core.ts";
import { getHeader } from "./headers.ts";
import { PublishError, parseSpec, splitDestinationQuery } from "./publish.ts";
import { scheduleJson } from "./schedules.ts";

export function createSchedule(core: Core, ctx: Ctx, rawDest: string): Reply {
  const cron = getHeader(ctx.headers, "upstash-cron");
  if (!cron) return fail(400, "Upstash-Cron header is required");
  try {
    const { destination } = splitDestinationQuery(rawDest, ctx.rawQuery);
    const queueName = getHeader(ctx.headers, "upstash-queue-name");
    const spec = parseSpec({
      destination,
      headers: ctx.headers,
      body: ctx.body,
      callerIp: ctx.ip,
      ...(queueName ? { queueName } : {}),
    });
    // A schedule re-fires: a not-before would make every run wait for the same instant.
    delete spec.notBefore;
    const rec = core.scheduler.upsert(cron, spec, getHeader(ctx.headers, "upstash-schedule-id"));
    return ok({ scheduleId: rec.scheduleId }, 201);
  } catch (e) {
    if (e instanceof PublishError) return fail(e.status, e.message);
    throw e;
  }
}

export function scheduleRoutes(core: Core, ctx: Ctx, segs: string[]): Reply | undefined {
  const { method } = ctx;
  const [id, action] = segs;
  if (id === undefined) {
    if (method === "GET") return ok([...core.store.schedules.values()].map(scheduleJson));
    return undefined;
  }
  if (action === "pause" || action === "resume") {
    if (method !== "PATCH" && method !== "POST") return undefined;
    if (!core.scheduler.setPaused(id, action === "pause")) return fail(404, `schedule ${id} not found`);
    return ok({});
  }
  if (action !== undefined) return undefined;
  if (method === "GET") {
    const rec = core.store.schedules.get(id);
    return rec ? ok(scheduleJson(rec)) : fail(404, `schedule ${id} not found`);
  }
  if (method === "DELETE") {
    if (!core.scheduler.delete(id)) return fail(404, `schedule ${id} not found`);
    return ok({});
  }
  return undefined;
}
