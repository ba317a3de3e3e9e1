// The API reference page (/docs) as a person sees it, in real Chromium against the Worker in
// workerd, with every request to another origin blocked: it must render from /openapi.json alone.
// The screenshot is kept in dist/screenshots/docs.png.
import { mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "../dev/stack.ts";
import { tasks as builtIn } from "../tasks/index.ts";
import { stack } from "./helpers/api.ts";
import { launchBrowser } from "./helpers/browser.ts";

let browser: Browser;
beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});

describe("/docs in Chromium", () => {
  it("renders every operation and each task's payload schema offline, and is screenshotted", async () => {
    const page = await browser.newPage({ viewport: { width: 1100, height: 1400 } });
    const origin = new URL(stack().worker).origin;
    const elsewhere: string[] = [];
    await page.route("**/*", (route) => {
      if (new URL(route.request().url()).origin === origin) return route.continue();
      elsewhere.push(route.request().url());
      return route.abort();
    });
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(`${stack().worker}/docs`);
    await page.waitForSelector("section.op");
    expect(await page.textContent("#meta")).toBe(`OpenAPI 3.1.0 · ${origin}`);
    // Every task a caller may enqueue (an internal one, the callbacks', has no route).
    for (const t of builtIn.filter((t) => !t.internal)) {
      const op = page.locator(`#enqueue_${t.name.replaceAll("-", "_")}`);
      expect(await op.textContent(), t.name).toContain(`/v1/tasks/${t.name}`);
      expect(await op.locator("details > summary").textContent()).toBe("Payload schema");
    }
    const email = await page.locator("#enqueue_send_email pre").textContent();
    expect(JSON.parse(email!)).toMatchObject({ type: "object", required: ["to", "subject"] });
    const ops = await page.locator("section.op").count();
    const doc = await (await fetch(`${stack().worker}/openapi.json`)).json();
    expect(ops).toBe(Object.values(doc.paths).reduce((n: number, item) => n + Object.keys(item as object).length, 0));
    expect(elsewhere).toEqual([]);
    expect(errors).toEqual([]);
    const shot = join(ROOT, "dist/screenshots/docs.png");
    mkdirSync(join(ROOT, "dist/screenshots"), { recursive: true });
    await page.screenshot({ path: shot });
    expect(statSync(shot).size).toBeGreaterThan(20_000);
  });
});
