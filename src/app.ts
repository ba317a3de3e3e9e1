import { Hono } from "hono";
import { dead } from "../routes/dead.ts";
import { deliver } from "../routes/deliver.ts";
import { health } from "../routes/health.ts";
import { openapi } from "../routes/openapi.ts";
import { publicRoutes } from "../routes/public.ts";
import { schedules } from "../routes/schedules.ts";
import { stats } from "../routes/stats.ts";
import { suppressions } from "../routes/suppressions.ts";
import { tasks as taskRoutes } from "../routes/tasks.ts";
import { ui } from "../routes/ui.ts";
import { verification } from "../routes/verification.ts";
import { webhooks } from "../routes/webhooks.ts";
import callbackTask from "../tasks/callback.ts";
import { tasks as builtInTasks } from "../tasks/index.ts";
import { requireApiKey, requireQstashSignature } from "./auth.ts";
import { ApiError, messageOf } from "./errors.ts";
import { type OutboundFetch, platformFetch } from "./outbound.ts";
import { type AnyTask, Registry } from "./registry.ts";
import { type AppEnv, relay, type Wiring } from "./relay.ts";
import { scheduledSync } from "./scheduled.ts";
import type { Services } from "./services.ts";

export interface AppOptions {
  /** Task types to serve. @default every task in tasks/ */
  tasks?: readonly AnyTask[];
  /**
   * Clients to use instead of those the env configures (e.g. a recording QStash client in a
   * test). @default created from the env, once per isolate
   */
  services?: Partial<Services>;
  /** The runtime's checked fetch for calls on a caller's behalf (`ctx.fetch`). @default {@link platformFetch} */
  outbound?: OutboundFetch;
}

/**
 * The composition root: the one place that wires routes/ and tasks/ into the machinery. The
 * result is a Worker as it stands (`export default createApp({ tasks })`): Hono's `fetch`, and a
 * `scheduled` handler whose Cron Triggers keep QStash's schedules equal to the code.
 */
export function createApp(options: AppOptions = {}) {
  // The callback task is machinery: every app serves it (also one given its own task list), so
  // every task may carry a `callback`.
  const served = options.tasks ?? builtInTasks;
  // An app task of that name would be handed celeriac's callback payloads (and be enqueueable by callers).
  if (served.some((t) => t.name === callbackTask.name && t !== callbackTask)) {
    throw new TypeError(
      `[celeriac] the task name "${callbackTask.name}" is celeriac's own (it sends completion callbacks); name your task otherwise`,
    );
  }
  const all = served.includes(callbackTask) ? served : [...served, callbackTask];
  const wiring: Wiring = {
    registry: new Registry(all),
    services: options.services,
    outbound: options.outbound ?? platformFetch,
  };
  const app = new Hono<AppEnv>();
  app.onError((err, c) => {
    if (err instanceof ApiError) {
      if (err.retryAfter !== undefined) c.header("Retry-After", String(err.retryAfter));
      for (const [k, v] of Object.entries(err.headers ?? {})) c.header(k, v);
      return c.json(err.toJSON(), err.status);
    }
    console.error("[celeriac] unhandled error", err);
    return c.json({ error: { code: "internal", message: `[celeriac] internal error: ${messageOf(err)}` } }, 500);
  });
  app.notFound((c) => c.json({ error: { code: "not_found", message: `no route for ${c.req.method} ${c.req.path}` } }, 404));
  const routes = app
    .route("/", health(wiring))
    .route("/", openapi(wiring))
    // Browsers' routes take no API key (exact-origin CORS, limits and receipts guard them). Mounted
    // before the key check, they answer every /v1/public request themselves, so it never runs.
    .use("/v1/public/*", relay(wiring))
    .route("/v1/public", publicRoutes)
    // Every other /v1 route needs an API key, every /qstash route QStash's signature: mounted once
    // here, so a new route file cannot forget them.
    .use("/v1/*", relay(wiring), requireApiKey)
    .use("/qstash/*", relay(wiring), requireQstashSignature)
    .use("/webhooks/*", relay(wiring))
    .route("/v1/verification", verification)
    // The dashboard has its own gate (a session cookie, form tokens), mounted in routes/ui.ts.
    .use("/ui/*", relay(wiring))
    .route("/v1/tasks", taskRoutes)
    .route("/v1/schedules", schedules)
    .route("/v1/stats", stats)
    .route("/v1/suppressions", suppressions)
    .route("/v1/dead", dead)
    .route("/ui", ui)
    .route("/", deliver)
    .route("/", webhooks);
  return Object.assign(routes, { scheduled: scheduledSync(wiring) });
}

export type App = ReturnType<typeof createApp>;
