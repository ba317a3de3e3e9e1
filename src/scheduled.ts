import { ConfigError, type Env } from "./env.ts";
import { messageOf } from "./errors.ts";
import { relayFor, type Wiring } from "./relay.ts";
import { type SyncReport, syncSchedules } from "./schedules.ts";

/** What celeriac reads of a Cron Trigger's event (Workers' `ScheduledController`). */
export interface ScheduledEvent {
  cron: string;
  scheduledTime: number;
}

/** What celeriac uses of the Workers execution context. */
export interface WaitUntil {
  waitUntil(promise: Promise<unknown>): void;
}

/**
 * The Workers `scheduled()` handler: every Cron Trigger of wrangler.jsonc makes QStash's
 * schedules equal to the code's, so a deploy alone keeps them in step (no extra step after
 * `wrangler deploy`). A bad configuration or an unreachable QStash fails the run, which the
 * Workers logs show with the reason.
 */
export function scheduledSync(wiring: Wiring) {
  // `env: object`: wrangler's generated Env is an interface, which has no index signature.
  return (event: ScheduledEvent, env: object, ctx: WaitUntil): Promise<void> => {
    const run = (async () => {
      let relay: ReturnType<typeof relayFor>;
      try {
        relay = relayFor(wiring, (env ?? {}) as Env);
      } catch (err) {
        const why = err instanceof ConfigError ? err.problems.join("; ") : messageOf(err);
        throw new Error(`[celeriac] schedule sync (cron "${event.cron}") skipped, the relay is misconfigured: ${why}`, { cause: err });
      }
      try {
        const report = await syncSchedules(relay);
        console.log(`[celeriac] schedule sync (cron "${event.cron}"): ${summary(report)}`);
      } catch (err) {
        throw new Error(`[celeriac] schedule sync (cron "${event.cron}") failed: ${messageOf(err)}`, { cause: err });
      }
    })();
    ctx.waitUntil(run);
    return run;
  };
}

const summary = (r: SyncReport) => (["created", "updated", "deleted", "unchanged"] as const).map((k) => `${r[k].length} ${k}`).join(", ");
