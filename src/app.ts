import { Hono } from "hono";
import { health } from "../routes/health.ts";
import type { Env } from "./env.ts";
import { ApiError, messageOf } from "./errors.ts";

/** The composition root: the one place that wires routes/ and tasks/ into the machinery. */
export function createApp() {
  const app = new Hono<{ Bindings: Env }>();
  app.onError((err, c) => {
    if (err instanceof ApiError) {
      if (err.retryAfter !== undefined) c.header("Retry-After", String(err.retryAfter));
      return c.json(err.toJSON(), err.status);
    }
    console.error("[celeriac] unhandled error", err);
    return c.json({ error: { code: "internal", message: `[celeriac] internal error: ${messageOf(err)}` } }, 500);
  });
  app.notFound((c) => c.json({ error: { code: "not_found", message: `no route for ${c.req.method} ${c.req.path}` } }, 404));
  return app.route("/", health);
}

export type App = ReturnType<typeof createApp>;
