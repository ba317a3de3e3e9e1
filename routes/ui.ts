// The dashboard at /ui: security headers, same-origin form posts, the session gate and the form
// token, mounted once here in front of every page, so a new page cannot forget them.
import { Hono, type MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { csrf } from "hono/csrf";
import { HTTPException } from "hono/http-exception";
import { secureHeaders } from "hono/secure-headers";
import { ApiError } from "../src/errors.ts";
import { MAX_BODY_BYTES } from "../src/http.ts";
import { csrfMatches, readSession } from "../src/session.ts";
import { uiAssets } from "./ui-assets.ts";
import { signIn, signOut } from "./ui-auth.ts";
import { uiDead } from "./ui-dead.ts";
import { uiEnqueue } from "./ui-enqueue.ts";
import { errorPage, type UiEnv } from "./ui-layout.ts";
import { uiOverview } from "./ui-overview.ts";
import { uiSchedules } from "./ui-schedules.ts";
import { uiTasks } from "./ui-tasks.ts";

/** Without a valid session: to the sign-in page (a GET comes back afterwards); nothing runs. */
const requireSession: MiddlewareHandler<UiEnv> = async (c, next) => {
  const session = await readSession(c, c.var.relay.config);
  if (!session) {
    const back = c.req.method === "GET" ? `?next=${encodeURIComponent(c.req.path + new URL(c.req.url).search)}` : "";
    return c.redirect(`/ui/sign-in${back}`, 303);
  }
  c.set("session", session);
  await next();
};

/** Every form post carries the session's token; without it nothing happens (403). */
const requireFormToken: MiddlewareHandler<UiEnv> = async (c, next) => {
  if (c.req.method === "POST") {
    const body = await c.req.parseBody();
    if (!csrfMatches(c.var.session, body._csrf)) {
      return errorPage(
        c,
        403,
        "Form refused",
        "This form did not carry this session's token (an old page, or a form from another site). Nothing was changed; reload the page and try again.",
      );
    }
  }
  await next();
};

export const ui = new Hono<UiEnv>()
  .use(
    "*",
    secureHeaders({
      contentSecurityPolicy: {
        defaultSrc: ["'none'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        connectSrc: ["'self'"],
        formAction: ["'self'"],
        baseUri: ["'none'"],
        frameAncestors: ["'none'"],
      },
      referrerPolicy: "same-origin",
      crossOriginResourcePolicy: "same-origin",
    }),
    // Pages and answers about tasks are never cached by the browser or anything between.
    async (c, next) => {
      await next();
      if (!c.req.path.startsWith("/ui/assets/")) c.header("cache-control", "no-store");
    },
    // Form posts from another origin are refused before anything reads them.
    csrf(),
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: (c) => errorPage(c, 400, "Too large", `A form may send at most ${MAX_BODY_BYTES} bytes.`),
    }),
  )
  .route("/", uiAssets)
  .route("/", signIn)
  .use("*", requireSession, requireFormToken)
  .route("/", signOut)
  .route("/", uiOverview)
  .route("/", uiTasks)
  .route("/", uiSchedules)
  .route("/", uiDead)
  .route("/", uiEnqueue)
  .all("*", (c) =>
    c.req.path === "/ui/" ? c.redirect("/ui", 301) : errorPage(c, 404, "Not found", `There is no dashboard page at ${c.req.path}.`),
  );

ui.onError((err, c) => {
  if (err instanceof ApiError) {
    if (err.retryAfter !== undefined) c.header("Retry-After", String(err.retryAfter));
    // A page has no use for 401 (no WWW-Authenticate): the session gate redirects instead.
    const status = err.status === 401 ? 400 : err.status;
    return errorPage(c, status, titles[err.status] ?? "Refused", err.message);
  }
  if (err instanceof HTTPException && err.status === 403) {
    return errorPage(c, 403, "Form refused", "This form was posted from another site. Nothing was changed.");
  }
  console.error("[celeriac] dashboard error", err);
  return errorPage(c, 500, "Something broke", "The dashboard hit an internal error; it has been logged.");
});

const titles: Record<number, string> = {
  400: "Bad request",
  404: "Not found",
  409: "Not possible now",
  410: "Gone",
  422: "Invalid input",
  429: "Too many requests",
  503: "Unavailable",
};
