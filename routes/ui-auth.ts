import { Hono } from "hono";
import { html } from "hono/html";
import { endSession, readSession, signInName, startSession } from "../src/session.ts";
import { notice, page, type UiEnv } from "./ui-layout.ts";

/** Where to go after signing in: a dashboard path only, never another site. */
const safeNext = (next: unknown) =>
  typeof next === "string" && /^\/ui(\/[\w\-./?=&%]*)?$/.test(next) && !next.includes("//") ? next : "/ui";

const form = (next: string, problem?: string) => html`
${problem ? notice(problem) : ""}
<form method="post" action="/ui/sign-in">
<input type="hidden" name="next" value="${next}">
<label for="key">API key or dashboard key</label>
<p class="hint" id="key-hint">One of <code>CELERIAC_API_KEYS</code>, or <code>CELERIAC_DASHBOARD_KEY</code>. It is checked once; the browser keeps only a signed session cookie.</p>
<input id="key" name="key" type="password" autocomplete="current-password" required aria-describedby="key-hint"${problem ? html` aria-invalid="true"` : ""} autofocus>
<p><button type="submit">Sign in</button></p>
</form>`;

/** Sign-in (no session needed; the form post is same-origin only, by the csrf middleware). */
export const signIn = new Hono<UiEnv>()
  .get("/sign-in", async (c) => {
    const next = safeNext(c.req.query("next"));
    if (await readSession(c, c.var.relay.config)) return c.redirect(next, 303);
    return page(c, "Sign in", form(next));
  })
  .post("/sign-in", async (c) => {
    const relay = c.var.relay;
    const body = await c.req.parseBody();
    const next = safeNext(body.next);
    const name = typeof body.key === "string" && body.key ? await signInName(relay.config, body.key.trim()) : undefined;
    if (name === undefined) {
      console.warn("[celeriac] dashboard sign-in refused: the key is not valid");
      return page(c, "Sign in", form(next, "That key is not valid. Nothing was signed in."), { status: 403 });
    }
    await startSession(c, relay.config, name);
    return c.redirect(next, 303);
  });

/** Sign-out (a session and its form token are required, like every other form). */
export const signOut = new Hono<UiEnv>().post("/sign-out", (c) => {
  endSession(c);
  return c.redirect("/ui/sign-in", 303);
});
