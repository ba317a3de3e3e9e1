import type { Context, MiddlewareHandler } from "hono";
import { cors } from "hono/cors";
import { ApiError } from "./errors.ts";
import type { AppEnv } from "./relay.ts";
import { TURNSTILE_HEADER } from "./turnstile.ts";

/** Browsers may cache a preflight's answer this long, seconds. */
const PREFLIGHT_MAX_AGE_S = 600;

/**
 * CORS for the browser-facing routes: exact origins only. A request whose `Origin` is not allowed
 * (preflight or not) is refused with a JSON 403 and no CORS headers, so the browser blocks it
 * before the page can read anything. A request without `Origin` is not from a page's script and
 * passes (curl and servers can send anything; the limits still hold).
 */
export function publicCors(originsOf: (c: Context<AppEnv>) => readonly string[] | Promise<readonly string[]>): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const origins = await originsOf(c);
    const origin = c.req.header("origin");
    if (origin !== undefined && !origins.includes(origin)) {
      throw new ApiError(403, { code: "origin_not_allowed", message: `[celeriac] pages from ${origin} may not call ${c.req.path}` });
    }
    return cors({
      origin: [...origins],
      allowMethods: ["GET", "POST"],
      allowHeaders: ["content-type", TURNSTILE_HEADER],
      exposeHeaders: ["retry-after", "ratelimit", "ratelimit-policy"],
      maxAge: PREFLIGHT_MAX_AGE_S,
    })(c, next);
  };
}
