// The dashboard's page frame and the small pieces every page shares. Pages are `hono/html` tagged
// templates in .ts files: every interpolated value is escaped, and Node (which refuses .tsx) runs
// them unchanged, like Workers and Deno.
import type { Context } from "hono";
import { html } from "hono/html";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { Env } from "../src/env.ts";
import type { AppEnv } from "../src/relay.ts";
import type { Session } from "../src/session.ts";
import type { TaskState } from "../src/store/record.ts";

export type UiEnv = { Bindings: Env; Variables: AppEnv["Variables"] & { session: Session } };
export type Html = ReturnType<typeof html>;

const NAV = [
  ["/ui", "Overview"],
  ["/ui/tasks", "Tasks"],
  ["/ui/schedules", "Schedules"],
  ["/ui/dead", "Dead letters"],
  ["/ui/enqueue", "Enqueue"],
] as const;

/** What a page says about itself besides its body. */
export interface PageOptions {
  /** Re-fetch the page's main region every this many seconds (the live overview, a running task). */
  live?: number;
  /** @default 200 */
  status?: ContentfulStatusCode;
}

/** A whole page: the nav (for a signed-in session), `body` as the main region. */
export function page(c: Context, title: string, body: Html, opts: PageOptions = {}) {
  const session = c.get("session") as Session | undefined;
  const path = c.req.path.replace(/\/$/, "") || "/ui";
  const current = NAV.filter(([href]) => path === href || (href !== "/ui" && path.startsWith(`${href}/`))).at(-1)?.[0];
  return c.html(
    html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · celeriac</title>
<link rel="stylesheet" href="/ui/assets/ui.css">
<script src="/ui/assets/ui.js" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header>
<span class="brand">celeriac</span>
${
  session
    ? html`<nav aria-label="Dashboard"><ul>${NAV.map(
        ([href, label]) => html`<li><a href="${href}"${href === current ? html` aria-current="page"` : ""}>${label}</a></li>`,
      )}</ul></nav>
<form method="post" action="/ui/sign-out" class="signout">${token(c)}<button type="submit">Sign out <span class="muted">(${session.keyName})</span></button></form>`
    : ""
}
</header>
<main id="main" tabindex="-1"${opts.live ? html` data-live="${opts.live}"` : ""}>
<h1>${title}</h1>
${body}
</main>
</body>
</html>`,
    opts.status ?? 200,
  );
}

/**
 * The idempotency scope of what a session enqueues: ":" never occurs in an API key's name, so a
 * dashboard key never shares a scope with an API caller.
 */
export const uiScope = (session: Session) => `ui:${session.keyName}`;

/** The hidden CSRF field every form of a session carries. */
export const token = (c: Context) => {
  const session = c.get("session") as Session | undefined;
  return session ? html`<input type="hidden" name="_csrf" value="${session.csrf}">` : "";
};

/** A one-button form posting to `action` (cancel, retry, pause…). */
export const action = (c: Context, href: string, label: string, hidden: Record<string, string> = {}, kind = "") =>
  html`<form method="post" action="${href}" class="inline">${token(c)}${Object.entries(hidden).map(
    ([k, v]) => html`<input type="hidden" name="${k}" value="${v}">`,
  )}<button type="submit"${kind ? html` class="${kind}"` : ""}>${label}</button></form>`;

export const badge = (state: TaskState | "unknown") => html`<span class="badge s-${state}">${state}</span>`;

/** A time as a `<time>` element, shown in UTC (the counters' days are UTC days too). */
export const time = (iso: string | undefined | null) =>
  iso ? html`<time datetime="${iso}">${iso.slice(0, 19).replace("T", " ")}</time>` : html`<span class="muted">—</span>`;

export const json = (value: unknown) => html`<pre class="json">${JSON.stringify(value, null, 2)}</pre>`;

/** A message box: `role=alert` for problems, so screen readers announce it. */
export const notice = (text: Html | string, kind: "error" | "ok" = "error") =>
  html`<p class="notice ${kind}"${kind === "error" ? html` role="alert"` : html` role="status"`}>${text}</p>`;

/** An error page for a failed request (the status is the error's). */
export const errorPage = (c: Context, status: NonNullable<PageOptions["status"]>, title: string, message: string) =>
  page(c, title, html`${notice(message)}<p><a href="/ui">Back to the overview</a></p>`, { status });
