import { QstashError, type Schedule } from "@upstash/qstash";
import { ApiError, unavailable } from "./errors.ts";
import type { ScheduledMessage } from "./messages.ts";
import { DELIVER_PATH, deliveryOptions } from "./queue.ts";
import { deliveryFlowControl, type Relay } from "./relay.ts";

/** Schedules celeriac owns carry this id prefix; any other schedule is left alone. */
export const SCHEDULE_PREFIX = "celeriac-";

/** A schedule as the code declares it, in the form QStash stores it. */
export interface DesiredSchedule {
  scheduleId: string;
  task: string;
  name: string;
  cron: string;
  timezone: string;
  /** The cron as QStash stores it (`CRON_TZ=<zone> <cron>` outside UTC). */
  qstashCron: string;
  destination: string;
  /** The message every run carries; its options (retries, timeout, retry delay) are the task's. */
  body: string;
  /** How QStash delivers each run: the same as for a published task. */
  delivery: ReturnType<typeof deliveryOptions>;
}

export function desiredSchedules(relay: Relay): DesiredSchedule[] {
  return relay.registry.all().flatMap((def) =>
    def.schedules.map((s) => {
      const scheduleId = `${SCHEDULE_PREFIX}${def.name}-${s.name}`;
      const timezone = s.timezone ?? "UTC";
      const message: ScheduledMessage = {
        v: 1,
        schedule: scheduleId,
        task: def.name,
        payload: s.payload ?? null,
        options: { retries: def.retries, timeout: def.timeout, resultTtl: def.resultTtl, retryDelay: def.retryDelay },
      };
      return {
        scheduleId,
        task: def.name,
        name: s.name,
        cron: s.cron,
        timezone,
        qstashCron: timezone === "UTC" ? s.cron : `CRON_TZ=${timezone} ${s.cron}`,
        destination: relay.config.publicUrl + DELIVER_PATH,
        body: JSON.stringify(message),
        delivery: deliveryOptions(relay.config, def.name, message.options, deliveryFlowControl(relay, def)),
      };
    }),
  );
}

/** Why a live schedule differs from the declaration; empty when it matches. */
export function drift(want: DesiredSchedule, live: Schedule): string[] {
  const out: string[] = [];
  if (live.cron !== want.qstashCron) out.push(`cron is "${live.cron}", declared "${want.qstashCron}"`);
  if (live.destination !== want.destination) out.push(`destination is ${live.destination}, declared ${want.destination}`);
  if ((live.body ?? "") !== want.body) out.push("payload or options differ");
  if (live.retries !== want.delivery.retries) out.push(`retries is ${live.retries}, declared ${want.delivery.retries}`);
  return out;
}

export interface SyncReport {
  created: string[];
  updated: string[];
  deleted: string[];
  unchanged: string[];
  /** Schedules celeriac did not create: never touched. */
  foreign: string[];
}

/**
 * Makes QStash match the code: creates or overwrites (upsert by id) each declared schedule that is
 * missing or drifted, deletes celeriac's schedules no longer declared, leaves everything else.
 * Running it twice changes nothing the second time.
 */
export async function syncSchedules(relay: Relay): Promise<SyncReport> {
  const qstash = relay.services.qstash;
  const live = await qstash.schedules.list();
  const byId = new Map(live.map((s) => [s.scheduleId, s]));
  const report: SyncReport = { created: [], updated: [], deleted: [], unchanged: [], foreign: [] };
  const desired = desiredSchedules(relay);
  for (const want of desired) {
    const have = byId.get(want.scheduleId);
    if (have && drift(want, have).length === 0) {
      report.unchanged.push(want.scheduleId);
      continue;
    }
    await qstash.schedules.create({
      scheduleId: want.scheduleId,
      destination: want.destination,
      cron: want.qstashCron,
      body: want.body,
      headers: { "Content-Type": "application/json" },
      ...want.delivery,
    });
    (have ? report.updated : report.created).push(want.scheduleId);
  }
  const declared = new Set(desired.map((d) => d.scheduleId));
  for (const s of live) {
    // Ours: celeriac's id prefix and this deployment's delivery URL (another deployment may
    // share the QStash account).
    if (!ownedBy(relay, s)) report.foreign.push(s.scheduleId);
    else if (!declared.has(s.scheduleId)) {
      await qstash.schedules.delete(s.scheduleId);
      report.deleted.push(s.scheduleId);
    }
  }
  return report;
}

function ownedBy(relay: Relay, s: Schedule): boolean {
  return s.scheduleId.startsWith(SCHEDULE_PREFIX) && s.destination === relay.config.publicUrl + DELIVER_PATH;
}

/** Declared vs. live, with drift flagged, for `GET /v1/schedules`. */
export async function scheduleStatus(relay: Relay) {
  const live = await relay.services.qstash.schedules.list();
  const byId = new Map(live.map((s) => [s.scheduleId, s]));
  const time = (ms: number | undefined) => (ms ? new Date(ms).toISOString() : null);
  const declared = desiredSchedules(relay).map((want) => {
    const have = byId.get(want.scheduleId);
    return {
      id: want.scheduleId,
      task: want.task,
      name: want.name,
      cron: want.cron,
      timezone: want.timezone,
      live: have
        ? { cron: have.cron, paused: have.isPaused, nextRun: time(have.nextScheduleTime), lastRun: time(have.lastScheduleTime) }
        : null,
      drift: have ? drift(want, have) : ["not in QStash; sync creates it"],
    };
  });
  const known = new Set(declared.map((d) => d.id));
  const orphans = live
    .filter((s) => ownedBy(relay, s) && !known.has(s.scheduleId))
    .map((s) => ({ id: s.scheduleId, cron: s.cron, paused: s.isPaused, drift: ["no longer declared; sync deletes it"] }));
  return { schedules: declared, orphans };
}

/** Runs a QStash call: its 404 is an unknown schedule, anything else that fails means QStash is unreachable (503). */
export const viaQstash = <T>(work: Promise<T>): Promise<T> =>
  work.catch((err: unknown) => {
    if (err instanceof QstashError && err.status === 404) throw new ApiError(404, { code: "unknown_schedule", message: err.message });
    throw unavailable("qstash", err);
  });

/** Pauses or resumes one of celeriac's schedules; 404 for any other id. Returns the live state. */
export async function setPaused(relay: Relay, id: string, paused: boolean): Promise<{ id: string; paused: boolean }> {
  if (!id.startsWith(SCHEDULE_PREFIX)) {
    throw new ApiError(404, {
      code: "unknown_schedule",
      message: `"${id}" is not a celeriac schedule (ids start with ${SCHEDULE_PREFIX})`,
    });
  }
  const client = relay.services.qstash.schedules;
  await viaQstash(client.get(id));
  await viaQstash(paused ? client.pause({ schedule: id }) : client.resume({ schedule: id }));
  const live = await viaQstash(client.get(id));
  return { id, paused: live.isPaused };
}
