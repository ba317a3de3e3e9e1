// The dashboard in real Chromium, through the Worker in workerd: sign in, overview, a failed task
// retried until it succeeds, a schedule paused and resumed, dead letters replayed (one, and by
// filter after the dry run), the enqueue form, sign-out. axe-core checks every page; each page's
// screenshot goes to dist/ui/. A stack of its own, so pausing a schedule cannot meet another test.
import { mkdirSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEV_API_KEY, ROOT, type Stack, startStack } from "../dev/stack.ts";
import { call, stack as testStack, unique, until } from "./helpers/api.ts";
import { axeViolations, launchBrowser } from "./helpers/browser.ts";
import { startWebhookReceiver, type WebhookReceiver } from "./helpers/webhook-receiver.ts";

const SHOTS = join(ROOT, "dist/ui");
const DAILY = "celeriac-daily-stats-daily";

let stack: Stack;
let rx: WebhookReceiver;
let browser: Browser;
let context: BrowserContext;
let page: Page;
const cspErrors: string[] = [];

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  [stack, browser] = await Promise.all([
    startStack({
      ports: { bridge: 0, sink: 0, broker: 0, worker: 0 },
      timeScale: 0.05, // Under the run's key prefix, so its data is deleted with the rest of the run's, but apart:
      // replaying dead letters by filter here never touches another test's failed tasks.
      vars: { CELERIAC_REDIS_PREFIX: `${testStack().env.CELERIAC_REDIS_PREFIX!}ui:`, CELERIAC_WEBHOOK_ALLOW_HOSTS: "127.0.0.1" },
    }),
    launchBrowser(),
  ]);
  rx = await startWebhookReceiver(stack.env.CELERIAC_WEBHOOK_SECRET!);
  context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  page = await context.newPage();
  page.on("console", (m) => {
    if (/Content Security Policy/i.test(m.text())) cspErrors.push(m.text());
  });
});

afterAll(async () => {
  await browser?.close();
  await rx?.close();
  await stack?.close();
});

const api = (method: string, path: string, body?: unknown) => call(method, path, body, { base: stack.worker.url });
const url = (path: string) => stack.worker.url + path;

/** A webhook task that fails for good on its first attempt (400) and succeeds when run again. */
async function failedTask(): Promise<string> {
  const path = `/${unique("flaky").replace(" ", "-")}`;
  rx.script(path, [{ status: 400, body: "no" }]);
  const r = await api("POST", "/v1/tasks/webhook", { payload: { url: rx.base + path, body: { json: { hello: "dashboard" } } } });
  expect(r.status).toBe(202);
  await until("the task to fail", async () => ((await api("GET", `/v1/tasks/${r.body.id}`)).body.state === "failed" ? true : undefined));
  return r.body.id;
}

/** axe on the page now (no serious or critical violation), then its screenshot. */
async function check(name: string, fullPage = true) {
  expect(await axeViolations(page), `axe on ${name}`).toEqual([]);
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage });
}

const waitForText = (selector: string, text: string) => page.locator(selector, { hasText: text }).first().waitFor({ timeout: 20_000 });

describe("the dashboard in Chromium", () => {
  it("signs in, shows, retries, pauses, replays, enqueues, refuses another site's form and signs out", { timeout: 180_000 }, async () => {
    // Without a session: the sign-in page.
    await page.goto(url("/ui/tasks"));
    expect(new URL(page.url()).pathname).toBe("/ui/sign-in");
    await check("sign-in");
    await page.getByLabel("API key or dashboard key").fill("wrong-key-wrong-key");
    await page.getByRole("button", { name: "Sign in" }).click();
    await waitForText("[role=alert]", "not valid");
    await page.getByLabel("API key or dashboard key").fill(DEV_API_KEY);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(url("/ui/tasks"));
    const [cookie] = await context.cookies();
    expect(cookie).toMatchObject({ name: "celeriac_session", httpOnly: true, secure: true, sameSite: "Strict", path: "/ui" });
    expect(cookie!.value).not.toContain(DEV_API_KEY);

    // A failed task: listed, opened, retried, watched until it succeeds (the page refreshes itself).
    const id = await failedTask();
    await page.goto(url("/ui"));
    await waitForText("h1", "Overview");
    await waitForText("main table a", id);
    await check("overview");
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: join(SHOTS, "overview-phone.png"), fullPage: true });
    await page.setViewportSize({ width: 1100, height: 900 });
    await page.goto(url("/ui/tasks?state=failed&task=webhook"));
    await check("tasks");
    await page.getByRole("link", { name: id }).click();
    await page.waitForURL(url(`/ui/tasks/${id}`));
    await waitForText("dl.facts dd", "failed");
    await check("task-failed");
    await page.getByRole("button", { name: "Retry" }).click();
    await waitForText("dl.facts .badge", "succeeded");
    expect(page.url()).toBe(url(`/ui/tasks/${id}`));
    await waitForText("ol.timeline li", "attempt 2");
    await check("task-succeeded");
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: join(SHOTS, "task-phone.png"), fullPage: true });
    await page.setViewportSize({ width: 1100, height: 900 });
    expect((await api("GET", `/v1/tasks/${id}`)).body).toMatchObject({ state: "succeeded", generation: 1 });

    // Schedules: sync, pause, resume.
    await page.goto(url("/ui/schedules"));
    await page.getByRole("button", { name: "Sync with QStash" }).click();
    await waitForText("[role=status]", "Synced");
    const row = page.locator("tr", { hasText: DAILY });
    await row.getByRole("button", { name: "Pause" }).click();
    await waitForText("[role=status]", `Paused ${DAILY}`);
    await row.locator(".badge", { hasText: "paused" }).waitFor();
    await check("schedules");
    expect((await api("GET", "/v1/schedules")).body.schedules[0].live.paused).toBe(true);
    await row.getByRole("button", { name: "Resume" }).click();
    await waitForText("[role=status]", `Resumed ${DAILY}`);
    expect((await api("GET", "/v1/schedules")).body.schedules[0].live.paused).toBe(false);
    // Run now: the declared task with the schedule's payload, once, watched on its page.
    await row.getByRole("button", { name: "Run now" }).click();
    await page.waitForURL(/\/ui\/tasks\/tsk_/);
    await waitForText("dl.facts dd", "daily-stats");
    await waitForText("dl.facts .badge", "succeeded");

    // Dead letters: replay one; then replay by filter after the dry run's count.
    const dead = await failedTask();
    await page.goto(url("/ui/dead?task=webhook"));
    await check("dead-letters");
    await page.locator("tr", { hasText: dead }).getByRole("button", { name: "Replay" }).click();
    await page.waitForURL(url(`/ui/tasks/${dead}`));
    await waitForText("dl.facts .badge", "succeeded");
    const more = [await failedTask(), await failedTask()];
    await page.goto(url("/ui/dead"));
    await page.getByLabel("Task type").selectOption("webhook");
    await page.getByRole("button", { name: "Replay by filter…" }).click();
    const counted = Number(await page.locator("[role=status] strong").textContent());
    expect(counted).toBeGreaterThanOrEqual(2);
    await check("dead-letters-dry-run");
    await page.getByRole("button", { name: /^Replay \d+ task/ }).click();
    await waitForText("[role=status]", "Replayed");
    for (const t of more)
      await until(`${t} to succeed`, async () => ((await api("GET", `/v1/tasks/${t}`)).body.state === "succeeded" ? true : undefined));

    // The enqueue form, generated from send-email's schema: a bad address first, then a good one.
    await page.goto(url("/ui/enqueue"));
    await page.getByRole("link", { name: "send-email" }).click();
    const subject = unique("from the dashboard");
    await page.getByLabel("to", { exact: true }).fill("not an address");
    await page.getByLabel("subject").fill(subject);
    await page.getByLabel(/^text/).fill("Sent from the enqueue form.");
    await page.getByRole("button", { name: "Enqueue" }).click();
    await waitForText(".field-error", "must be an email address");
    expect(await page.evaluate(() => document.activeElement?.id)).toBe("p-to"); // the field to fix has the cursor
    await check("enqueue-form");
    await page.getByLabel("to", { exact: true }).fill("ada@celeriac.dev");
    await page.getByRole("button", { name: "Enqueue" }).click();
    await page.waitForURL(/\/ui\/tasks\/tsk_/);
    await waitForText("dl.facts .badge", "succeeded");
    const sent = await (await fetch(`${stack.sink.url}/_sink/emails`)).json();
    expect(sent.emails.filter((e: any) => (e.subject ?? e.payload?.subject) === subject)).toHaveLength(1);

    // Another origin's page posts a form at the dashboard while signed in: refused, nothing changes.
    const waiting = await api("POST", "/v1/tasks/send-email", {
      payload: { to: "ada@celeriac.dev", subject: unique("later"), text: "x" },
      delay: "1h",
    });
    const evil = createServer((_, res) => {
      res.writeHead(200, { "content-type": "text/html" });
      res.end(
        `<!doctype html><title>prize</title><form method="post" action="${url(`/ui/tasks/${waiting.body.id}/cancel`)}"><button>Win a prize</button></form>`,
      );
    });
    await new Promise<void>((ok) => evil.listen(0, "127.0.0.1", ok));
    try {
      await page.goto(`http://127.0.0.1:${(evil.address() as AddressInfo).port}/`);
      await page.getByRole("button", { name: "Win a prize" }).click();
      await waitForText("h1", "Form refused");
      expect((await api("GET", `/v1/tasks/${waiting.body.id}`)).body.state).toBe("scheduled");
    } finally {
      evil.closeAllConnections();
      await new Promise((ok) => evil.close(ok));
    }
    await api("DELETE", `/v1/tasks/${waiting.body.id}`);
    await page.goto(url("/ui"));

    // Sign out: every page is refused again.
    await page.getByRole("button", { name: /Sign out/ }).click();
    await page.waitForURL(url("/ui/sign-in"));
    for (const path of ["/ui", `/ui/tasks/${id}`]) {
      await page.goto(url(path));
      expect(new URL(page.url()).pathname).toBe("/ui/sign-in");
      // Only the sign-in form (which carries the asked-for path back): no task data.
      expect(await page.locator("main").textContent()).not.toMatch(/tsk_|webhook|hello/);
    }
    expect(cspErrors).toEqual([]);
  });
});
