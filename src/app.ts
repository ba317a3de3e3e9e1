import { Hono } from "hono";
import { deliver } from "../routes/deliver.ts";
import { health } from "../routes/health.ts";
import { schedules } from "../routes/schedules.ts";
import { stats } from "../routes/stats.ts";
import { tasks as taskRoutes } from "../routes/tasks.ts";
import { tasks as builtInTasks } from "../tasks/index.ts";
import { ApiError, messageOf } from "./errors.ts";
import { Registry } from "./registry.ts";
import { relay, type AppEnv } from "./relay.ts";
import type { TaskDefinition } from "./task.ts";

export interface AppOptions {
  /** Task types to serve. @default every task in tasks/ */
  tasks?: TaskDefinition[];
}

/** The composition root: the one place that wires routes/ and tasks/ into the machinery. */
export function createApp(options: AppOptions = {}) {
  const registry = new Registry(options.tasks ?? builtInTasks);
  const app = new Hono<AppEnv>();
  app.onError((err, c) => {
    if (err instanceof ApiError) {
      if (err.retryAfter !== undefined) c.header("Retry-After", String(err.retryAfter));
      return c.json(err.toJSON(), err.status);
    }
    console.error("[celeriac] unhandled error", err);
    return c.json({ error: { code: "internal", message: `[celeriac] internal error: ${messageOf(err)}` } }, 500);
  });
  app.notFound((c) => c.json({ error: { code: "not_found", message: `no route for ${c.req.method} ${c.req.path}` } }, 404));
  return app
    .route("/", health)
    .use("/v1/*", relay(registry))
    .use("/qstash/*", relay(registry))
    .route("/v1/tasks", taskRoutes)
    .route("/v1/schedules", schedules)
    .route("/v1/stats", stats)
    .route("/", deliver);
}

export type App = ReturnType<typeof createApp>;
