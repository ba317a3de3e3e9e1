// Real Chromium for the tests of what a person sees: Debian's `chromium` driven by playwright-core
// (which downloads no browser of its own). `.ci/run` installs the package when it is missing.
import { existsSync } from "node:fs";
import { chromium, type Browser } from "playwright-core";

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
    throw new Error(`[celeriac] the browser tests need Chromium at ${CHROMIUM}: apt-get install -y chromium (.ci/run installs it when missing)`);
  }
  return chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
}
