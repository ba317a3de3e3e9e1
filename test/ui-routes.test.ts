// The dashboard's gate in-process (`app.request` against the stack's Redis and broker): sessions,
// forged and expired cookies, form tokens, cross-site posts, unknown ids and bad filters. Each
// refusal is checked to have changed nothing.
import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { DEV_API_KEY } from "../dev/stack.ts";
import { createApp } from "../src/app.ts";
import { loadConfig } from "../src/env.ts";
import { startSession } from "../src/session.ts";
import { call, stack, unique, until } from "./helpers/api.ts";

const ORIGIN = "http://localhost";
const DASHBOARD_KEY = "dashboard-key-for-the-ui-tests";
const env = () => ({ ...stack().env, CELERIAC_DASHBOARD_KEY: DASHBOARD_KEY });
const app = createApp();

const get = (path: string, cookie = "") => app.request(path, { headers: cookie ? { cookie } : {} }, env());
const post = (path: string, form: Record<string, string>, headers: Record<string, string> = {}) =>
  app.request(
    path,
    {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", origin: ORIGIN, "sec-fetch-site": "same-origin", ...headers },
      body: new URLSearchParams(form).toString(),
    },
    env(),
  );

/** Signs in with `key`; the session cookie (name=value) and the page's form token. */
async function signIn(key = DEV_API_KEY) {
  const r = await post("/ui/sign-in", { key, next: "/ui/tasks" });
  expect(r.status).toBe(303);
  const cookie = r.headers.get("set-cookie")!.split(";")[0]!;
  const page = await (await get("/ui/enqueue", cookie)).text();
  const csrf = /name="_csrf" value="([^"]+)"/.exec(page)![1]!;
  return { cookie, csrf, setCookie: r.headers.get("set-cookie")! };
}

/** A task that waits an hour, so it stays cancellable while the test pokes at it. */
async function waitingTask() {
  const r = await call("POST", "/v1/tasks/send-email", {
    payload: { to: "ui@celeriac.dev", subject: unique("ui"), text: "x" },
    delay: "1h",
  });
  expect(r.status).toBe(202);
  return r.body.id as string;
}
const stateOf = async (id: string) => (await call("GET", `/v1/tasks/${id}`)).body.state;

describe("dashboard routes in-process", () => {
  it("sends every /ui page to sign-in without a session, leaking nothing, and acts on nothing", async () => {
    const id = await waitingTask();
    for (const path of ["/ui", "/ui/tasks", `/ui/tasks/${id}`, "/ui/schedules", "/ui/dead", "/ui/enqueue/send-email", "/ui/nope"]) {
      const r = await get(path);
      expect(r.status, path).toBe(303);
      expect(r.headers.get("location")).toBe(`/ui/sign-in?next=${encodeURIComponent(path)}`);
      expect(await r.text()).not.toContain("tsk_");
    }
    const r = await post(`/ui/tasks/${id}/cancel`, {});
    expect(r.status).toBe(303);
    expect(r.headers.get("location")).toBe("/ui/sign-in");
    expect(await stateOf(id)).toBe("scheduled");
  });

  it("signs in with an API key or the dashboard key into a signed, HttpOnly, Secure, SameSite=Strict, expiring cookie", async () => {
    const wrong = await post("/ui/sign-in", { key: "not-a-key-of-this-relay" });
    expect(wrong.status).toBe(403);
    expect(wrong.headers.get("set-cookie")).toBeNull();
    expect(await wrong.text()).toContain("That key is not valid");
    for (const key of [DEV_API_KEY, DASHBOARD_KEY]) {
      const { cookie, setCookie } = await signIn(key);
      expect(setCookie).toMatch(/HttpOnly/);
      expect(setCookie).toMatch(/Secure/);
      expect(setCookie).toMatch(/SameSite=Strict/);
      expect(setCookie).toMatch(/Max-Age=28800/);
      expect(setCookie).toMatch(/Path=\/ui/);
      expect(decodeURIComponent(setCookie)).not.toContain(key);
      expect((await get("/ui", cookie)).status).toBe(200);
    }
    // The dashboard key opens the dashboard only, not the API.
    expect((await app.request("/v1/stats", { headers: { authorization: `Bearer ${DASHBOARD_KEY}` } }, env())).status).toBe(403);
  });

  it("refuses a forged cookie, an expired one, and one whose key was revoked", async () => {
    const { cookie } = await signIn();
    const [name, value] = [cookie.slice(0, cookie.indexOf("=")), decodeURIComponent(cookie.slice(cookie.indexOf("=") + 1))];
    const [payload, sig] = [value.slice(0, value.lastIndexOf(".")), value.slice(value.lastIndexOf(".") + 1)];
    const forged = [
      `${name}=${encodeURIComponent(`${payload.replace(/^dev/, "admin")}.${sig}`)}`,
      `${name}=${encodeURIComponent(`dev|9999999999|abc.${sig}`)}`,
      `${name}=garbage`,
    ];
    for (const c of forged) {
      const r = await get("/ui/tasks", c);
      expect(r.status).toBe(303);
      expect(r.headers.get("location")).toMatch(/^\/ui\/sign-in/);
    }
    // A validly signed cookie minted nine hours ago: past its 8 h life, whatever the browser kept.
    const mint = new Hono().get(
      "/",
      async (c) => (await startSession(c, loadConfig(env()), "dev", Date.now() - 9 * 3600_000), c.text("ok")),
    );
    const old = (await mint.request("/")).headers.get("set-cookie")!.split(";")[0]!;
    expect((await get("/ui", old)).status).toBe(303);
    // The key behind the session is no longer configured: the session ends with it.
    const revoked = await app.request(
      "/ui",
      { headers: { cookie } },
      { ...env(), CELERIAC_API_KEYS: "other:another-key-of-16-chars-or-more" },
    );
    expect(revoked.status).toBe(303);
  });

  it("acts on a form only with the session's token and from this origin", async () => {
    const { cookie, csrf } = await signIn();
    const id = await waitingTask();
    const attempts: [string, Record<string, string>, Record<string, string>][] = [
      ["no token", {}, { cookie }],
      ["a wrong token", { _csrf: "x".repeat(43) }, { cookie }],
      ["another session's token", { _csrf: (await signIn()).csrf }, { cookie }],
      [
        "a cross-site post, even with the token",
        { _csrf: csrf },
        { cookie, origin: "https://evil.example", "sec-fetch-site": "cross-site" },
      ],
    ];
    for (const [what, form, headers] of attempts) {
      const r = await post(`/ui/tasks/${id}/cancel`, form, headers);
      expect(r.status, what).toBe(403);
      expect(await r.text()).toMatch(/Nothing was changed/);
      expect(await stateOf(id), what).toBe("scheduled");
    }
    const ok = await post(`/ui/tasks/${id}/cancel`, { _csrf: csrf }, { cookie });
    expect(ok.status).toBe(303);
    expect(ok.headers.get("location")).toBe(`/ui/tasks/${id}`);
    expect(await stateOf(id)).toBe("cancelled");
    // Signing out needs the token too; afterwards the old page's forms lead to sign-in.
    expect((await post("/ui/sign-out", {}, { cookie })).status).toBe(403);
    const out = await post("/ui/sign-out", { _csrf: csrf }, { cookie });
    expect(out.status).toBe(303);
    expect(out.headers.get("set-cookie")).toMatch(/Max-Age=0/);
  });

  it("answers unknown ids and bad filters with a clear page and a 4xx, never a 5xx", async () => {
    const { cookie, csrf } = await signIn();
    const cases: [string, number, RegExp][] = [
      ["/ui/tasks/tsk_00000000000000000000000000", 404, /No task with id/],
      ["/ui/tasks/not-an-id", 404, /No task with id/],
      ["/ui/tasks?state=bogus", 400, /state must be one of/],
      ["/ui/tasks?task=no-such-task", 400, /no task named/],
      ["/ui/tasks?cursor=%25%25", 400, /cursor/],
      ["/ui/tasks/find?id=12", 400, /is not a task id/],
      ["/ui/enqueue/no-such-task", 404, /No task named/],
      ["/ui/nope", 404, /no dashboard page/],
    ];
    for (const [path, status, text] of cases) {
      const r = await get(path, cookie);
      expect(r.status, path).toBe(status);
      expect(r.headers.get("content-type")).toMatch(/text\/html/);
      expect(await r.text(), path).toMatch(text);
    }
    const retry = await post("/ui/tasks/tsk_00000000000000000000000000/retry", { _csrf: csrf }, { cookie });
    expect(retry.status).toBe(404);
    const replay = await post("/ui/dead/nope/replay", { _csrf: csrf }, { cookie });
    expect(replay.status).toBe(404);
    // A task that cannot be retried (it has not failed): 409 and a page that says why.
    const id = await waitingTask();
    const conflict = await post(`/ui/tasks/${id}/retry`, { _csrf: csrf }, { cookie });
    expect(conflict.status).toBe(409);
    expect(await conflict.text()).toMatch(/only failed, cancelled tasks can be retried/);
    expect(await stateOf(id)).toBe("scheduled");
  });

  it("enqueues from the generated form, and shows each field's problem without enqueueing", async () => {
    const { cookie, csrf } = await signIn();
    const subject = unique("ui form");
    const bad = await post(
      "/ui/enqueue/send-email",
      { _csrf: csrf, "p.to": "not an address", "p.subject": subject, "p.text": "hi" },
      { cookie },
    );
    expect(bad.status).toBe(422);
    const page = await bad.text();
    expect(page).toMatch(/id="p-to-err">[^<]*must be an email address/);
    expect(page).toContain('aria-invalid="true"');
    const none = await call("GET", "/v1/tasks?task=send-email&limit=100");
    expect(none.body.tasks.some((t: any) => t.payload?.subject === subject)).toBe(false);
    const ok = await post(
      "/ui/enqueue/send-email",
      { _csrf: csrf, "p.to": "ada@celeriac.dev", "p.subject": subject, "p.text": "hi", delay: "1h" },
      { cookie },
    );
    expect(ok.status).toBe(303);
    const id = ok.headers.get("location")!.replace("/ui/tasks/", "");
    const rec = (await call("GET", `/v1/tasks/${id}`)).body;
    expect(rec).toMatchObject({ task: "send-email", state: "scheduled", payload: { to: "ada@celeriac.dev", subject, text: "hi" } });
    await call("DELETE", `/v1/tasks/${id}`);
  });

  it("shows a redacted payload masked, and offers no retry it could not honour", async () => {
    const { cookie, csrf } = await signIn();
    const secret = `code ${Math.random().toString(36).slice(2, 10)}`;
    const made = await post(
      "/ui/enqueue/send-email",
      { _csrf: csrf, "p.to": "ada@celeriac.dev", "p.subject": unique("redacted"), "p.text": secret, delay: "1h", redact: "text" },
      { cookie },
    );
    expect(made.status).toBe(303);
    const path = made.headers.get("location")!;
    const id = path.replace("/ui/tasks/", "");
    expect((await post(`${path}/cancel`, { _csrf: csrf }, { cookie })).status).toBe(303);
    const html = await (await get(path, cookie)).text();
    expect(html).not.toContain(secret);
    expect(html).toContain("[redacted]");
    expect(html).toMatch(/<dt>Redacted<\/dt><dd><code>text<\/code>/);
    expect(html).not.toContain(`action="${path}/retry"`);
    expect(html).toContain(`"redact":["text"]`.replace(/"/g, "&quot;"));
    const retry = await post(`${path}/retry`, { _csrf: csrf }, { cookie });
    expect(retry.status).toBe(409);
    expect(await retry.text()).toMatch(/cannot be retried/);
    expect(await stateOf(id)).toBe("cancelled");
  });

  it("answers hostile queries, paths and forms (seeded) with a page and a 4xx at worst, never a 5xx", async () => {
    const { cookie, csrf } = await signIn();
    let seed = 20261129;
    const rnd = (n: number) => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n;
    const junk = [
      "",
      "x",
      "%",
      "%zz",
      "..%2F..",
      "<script>",
      "tsk_",
      "tsk_00000000000000000000000000",
      "failed",
      "webhook",
      "💥",
      "x".repeat(3000),
      "__proto__",
      "-1",
      "1e309",
      "a,b,,c",
      "headers.*",
    ];
    const pick = () => encodeURIComponent(junk[rnd(junk.length)]!);
    const pages = [
      "/ui",
      "/ui/tasks",
      "/ui/tasks/find",
      "/ui/dead",
      "/ui/dead/replay",
      "/ui/schedules",
      "/ui/enqueue",
      "/ui/enqueue/send-email",
      "/ui/enqueue/webhook",
    ];
    const forms = [
      "/ui/enqueue/send-email",
      "/ui/enqueue/webhook",
      "/ui/enqueue/daily-stats",
      "/ui/dead/replay",
      "/ui/tasks/tsk_00000000000000000000000000/retry",
      "/ui/schedules/celeriac-nope/pause",
      "/ui/schedules/x/run",
    ];
    const fields = [
      "p.to",
      "p.subject",
      "p.text",
      "p.url",
      "p.method",
      "p.headers",
      "p.body",
      "p.date",
      "p.",
      "delay",
      "redact",
      "idempotencyKey",
      "task",
      "before",
      "next",
    ];
    for (let i = 0; i < 150; i++) {
      const r =
        i % 3 === 2
          ? await post(
              forms[rnd(forms.length)]!,
              Object.fromEntries([
                ["_csrf", csrf],
                ...Array.from({ length: rnd(6) }, () => [fields[rnd(fields.length)]!, decodeURIComponent(pick())]),
              ]),
              { cookie },
            )
          : await get(
              `${pages[rnd(pages.length)]!}${i % 3 === 1 ? `/${pick()}` : ""}?state=${pick()}&task=${pick()}&cursor=${pick()}&id=${pick()}`,
              cookie,
            );
      expect(r.status, `case ${i}`).toBeLessThan(500);
      await r.body?.cancel();
    }
  });

  it("discards a dead letter: it stays failed and leaves the dead letters", async () => {
    const { cookie, csrf } = await signIn();
    const r = await call("POST", "/v1/tasks/webhook", { payload: { url: "http://127.0.0.1:9/nobody" }, retries: 0 });
    expect(r.status).toBe(202);
    await until("the task to fail", async () => ((await stateOf(r.body.id)) === "failed" ? true : undefined));
    expect(await (await get("/ui/dead?task=webhook", cookie)).text()).toContain(r.body.id);
    const out = await post(`/ui/dead/${r.body.id}/discard`, { _csrf: csrf }, { cookie });
    expect(out.status).toBe(303);
    expect(await stateOf(r.body.id)).toBe("failed");
    expect((await call("GET", `/v1/tasks/${r.body.id}`)).body.discardedAt).toBeDefined();
    expect(await (await get("/ui/dead?task=webhook", cookie)).text()).not.toContain(r.body.id);
    expect((await post(`/ui/dead/${r.body.id}/replay`, { _csrf: csrf }, { cookie })).status).toBe(409);
  });

  it("sends a CSP that allows only this origin's script and style, and no caching of pages", async () => {
    const { cookie } = await signIn();
    const r = await get("/ui", cookie);
    const csp = r.headers.get("content-security-policy")!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain("unsafe-inline");
    expect(r.headers.get("cache-control")).toBe("no-store");
    const html = await r.text();
    expect(html).not.toMatch(/<script>|style="|\son[a-z]+="/);
  });
});
