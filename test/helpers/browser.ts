// Real Chromium for the tests of what a person sees: Debian's `chromium` driven by playwright-core
// (which downloads no browser of its own). `.ci/run` installs the package when it is missing.
import { existsSync } from "node:fs";
import axe from "axe-core";
import { type Browser, chromium, type Page } from "playwright-core";

/** Where Debian puts the browser. */
export const CHROMIUM = "/usr/bin/chromium";

/** Flags for a headless run on a shared machine without a sandbox or a GPU, and no phoning home. */
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Launches Chromium; close it in the test's `afterAll`. */
export function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `[celeriac] the browser tests need Chromium at ${CHROMIUM}: apt-get install -y chromium (.ci/run installs it when missing)`,
    );
  }
  return chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
}

/** axe-core's serious and critical violations on the page as it is now (WCAG 2 A/AA and best practice). */
export async function axeViolations(page: Page): Promise<{ id: string; impact: string; help: string; targets: string[] }[]> {
  // Evaluated through the DevTools protocol, so the page's CSP (script-src 'self') stays in force.
  if (!(await page.evaluate(() => "axe" in window))) await page.evaluate(axe.source);
  const result = await page.evaluate(() =>
    (window as unknown as { axe: typeof axe }).axe.run(document, {
      runOnly: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"],
    }),
  );
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => ({ id: v.id, impact: v.impact!, help: v.help, targets: v.nodes.map((n) => n.target.join(" ")) }));
}
