/**
 * Schedules: cron evaluated with croner (5 fields, optional `CRON_TZ=<IANA> ` prefix).
 *
 * Clock: with 0 < timeScale < 1 cron runs on a virtual clock that starts at the broker's start
 * time and advances 1/timeScale times faster than real time (0.001 → a minute-cron fires every
 * 60 ms). lastScheduleTime/nextScheduleTime are reported on that virtual clock, so they are still
 * minute boundaries. Otherwise cron follows the wall clock. POST /_broker/schedules/{id}/trigger
 * fires a schedule at once regardless.
 */
import { Cron } from "croner";
import type { Dispatcher } from "./delivery.ts";
import { PublishError } from "./publish.ts";
import { newId, type Store } from "./store.ts";
import type { MessageSpec, ScheduleRecord, StoredMessage } from "./types.ts";
import { flowControlAndLabels } from "./views.ts";

export function parseCron(expr: string): Cron {
  let pattern = expr.trim();
  let timezone: string | undefined;
  const tz = /^CRON_TZ=(\S+)\s+(.*)$/.exec(pattern);
  if (tz) {
    timezone = tz[1];
    pattern = (tz[2] as string).trim();
  }
  try {
    return new Cron(pattern, { paused: true, mode: "5-part", ...(timezone ? { timezone } : {}) });
  } catch (e) {
    throw new PublishError(400, `invalid cron expression "${expr}": ${(e as Error).message}`);
  }
}

export class Scheduler {
  private store: Store;
  private dispatcher: Dispatcher;
  private timers = new Map<string, NodeJS.Timeout>();
  private crons = new Map<string, Cron>();
  private scale: number;
  private anchorReal = Date.now();

  constructor(store: Store, dispatcher: Dispatcher, timeScale: number) {
    this.store = store;
    this.dispatcher = dispatcher;
    this.scale = timeScale > 0 && timeScale < 1 ? timeScale : 1;
  }

  /** Now on the cron clock (virtual when scaled). */
  private virtualNow(): number {
    return this.anchorReal + (Date.now() - this.anchorReal) / this.scale;
  }

  upsert(cron: string, spec: MessageSpec, scheduleId?: string): ScheduleRecord {
    const parsed = parseCron(cron);
    const id = scheduleId || newId("scd");
    const previous = this.store.schedules.get(id);
    const rec: ScheduleRecord = {
      scheduleId: id,
      cron,
      spec,
      createdAt: previous?.createdAt ?? Date.now(),
      isPaused: false,
    };
    this.stop(id);
    this.crons.set(id, parsed);
    this.store.schedules.set(id, rec);
    this.arm(rec);
    this.store.changed();
    return rec;
  }

  /** Arms every loaded schedule. */
  resume(): void {
    for (const rec of this.store.schedules.values()) this.arm(rec);
  }

  private cronOf(rec: ScheduleRecord): Cron {
    let c = this.crons.get(rec.scheduleId);
    if (!c) {
      c = parseCron(rec.cron);
      this.crons.set(rec.scheduleId, c);
    }
    return c;
  }

  private arm(rec: ScheduleRecord): void {
    clearTimeout(this.timers.get(rec.scheduleId));
    this.timers.delete(rec.scheduleId);
    const next = this.cronOf(rec).nextRun(new Date(this.virtualNow()))?.getTime();
    if (next === undefined) {
      delete rec.nextScheduleTime;
      return;
    }
    rec.nextScheduleTime = next;
    if (rec.isPaused) return;
    const wait = Math.max(0, (next - this.virtualNow()) * this.scale);
    // setTimeout caps at ~24.8 days; re-arm on wake if it is not due yet.
    const timer = setTimeout(
      () => {
        this.timers.delete(rec.scheduleId);
        if (this.virtualNow() + 1 < next) return this.arm(rec);
        rec.lastScheduleTime = next;
        this.fire(rec);
        this.arm(rec);
      },
      Math.min(wait, 2_000_000_000),
    );
    timer.unref?.();
    this.timers.set(rec.scheduleId, timer);
  }

  /** Creates the schedule's message now (also used by the trigger control endpoint). */
  fire(rec: ScheduleRecord): StoredMessage {
    const msg = this.dispatcher.create({ ...rec.spec, header: rec.spec.header }, { scheduleId: rec.scheduleId });
    this.store.changed();
    return msg;
  }

  trigger(id: string): StoredMessage | undefined {
    const rec = this.store.schedules.get(id);
    if (!rec) return undefined;
    rec.lastScheduleTime = Date.now();
    return this.fire(rec);
  }

  setPaused(id: string, paused: boolean): boolean {
    const rec = this.store.schedules.get(id);
    if (!rec) return false;
    rec.isPaused = paused;
    this.arm(rec);
    this.store.changed();
    return true;
  }

  delete(id: string): boolean {
    this.stop(id);
    const had = this.store.schedules.delete(id);
    this.store.changed();
    return had;
  }

  private stop(id: string): void {
    clearTimeout(this.timers.get(id));
    this.timers.delete(id);
    this.crons.delete(id);
  }

  close(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}

/** The JSON QStash reports for a schedule. */
export function scheduleJson(rec: ScheduleRecord): Record<string, unknown> {
  const s = rec.spec;
  const out: Record<string, unknown> = {
    scheduleId: rec.scheduleId,
    cron: rec.cron,
    createdAt: rec.createdAt,
    destination: s.url,
    method: s.method,
    header: s.header,
    body: s.body.toString("utf8"),
    retries: s.maxRetries,
    isPaused: rec.isPaused,
  };
  if (s.delayMs !== undefined) out.delay = Math.round(s.delayMs / 1000);
  if (s.callback) out.callback = s.callback;
  if (s.failureCallback) out.failureCallback = s.failureCallback;
  if (s.retryDelay) out.retryDelayExpression = s.retryDelay;
  if (s.queueName) out.queueName = s.queueName;
  flowControlAndLabels(s, out);
  if (s.callerIp) out.callerIP = s.callerIp;
  if (rec.lastScheduleTime !== undefined) out.lastScheduleTime = rec.lastScheduleTime;
  if (rec.nextScheduleTime !== undefined) out.nextScheduleTime = rec.nextScheduleTime;
  return out;
}
