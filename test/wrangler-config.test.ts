// The wrangler config and what depends on it: current conventions, every variable the code reads
// declared (wrangler dev passes nothing else to the Worker), the generated Env type current, and
// the QStash clients deaf to a stray QSTASH_DEV.
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { unstable_readConfig } from "wrangler";
import { DEV_API_KEY, ROOT } from "../dev/stack.ts";
import { createApp } from "../src/app.ts";
import { CORE_VARIABLES } from "../src/env.ts";
import { PUBLIC_VARIABLES } from "../src/public-config.ts";
import { tasks as builtIn } from "../tasks/index.ts";
import { stack } from "./helpers/api.ts";

const config = unstable_readConfig({ config: join(ROOT, "wrangler.jsonc") });

describe("wrangler.jsonc", () => {
  it("follows current conventions: $schema, observability, required secrets, a Cron Trigger", async () => {
    const raw = (await import("node:fs")).readFileSync(join(ROOT, "wrangler.jsonc"), "utf8");
    expect(raw).toMatch(/"\$schema":\s*"\.\/node_modules\/wrangler\/config-schema\.json"/);
    expect(config.observability?.enabled).toBe(true);
    expect(config.triggers.crons?.length).toBeGreaterThan(0);
    expect(config.secrets?.required).toEqual(expect.arrayContaining(["QSTASH_TOKEN", "CELERIAC_API_KEYS", "RESEND_API_KEY"]));
  });

  it("gives CELERIAC_PUBLIC_URL no default: a required binding, so a deploy without it is refused", () => {
    expect(config.vars).not.toHaveProperty("CELERIAC_PUBLIC_URL");
    expect(config.secrets?.required).toContain("CELERIAC_PUBLIC_URL");
  });

  it("declares every variable the core, the browsers' routes and the built-in tasks read", () => {
    const declared = new Set([...Object.keys(config.vars), ...(config.secrets?.required ?? [])]);
    const read = [
      ...CORE_VARIABLES,
      ...PUBLIC_VARIABLES,
      ...builtIn.flatMap((t) => Object.keys((t.env as { entries?: object } | undefined)?.entries ?? {})),
    ];
    for (const name of read) expect(declared.has(name), `${name} is declared in wrangler.jsonc`).toBe(true);
  });

  it("worker-configuration.d.ts (the Env type) is what `npm run types` generates from it", () => {
    const out = execFileSync(
      process.execPath,
      [join(ROOT, "node_modules/wrangler/bin/wrangler.js"), "types", "--include-runtime=false", "--strict-vars=false", "--check"],
      {
        cwd: ROOT,
        encoding: "utf8",
        env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" },
      },
    );
    expect(out).toMatch(/up to date/i);
  });
});

describe("QStash clients", () => {
  afterEach(() => {
    delete process.env.QSTASH_DEV;
  });

  it("ignore a stray QSTASH_DEV: the configured URL, token and signing keys stay in use", async () => {
    // Set in the process env, where the SDK itself looks; in dev mode it would swap the configured
    // QStash for its own dev server on 127.0.0.1:8080 and its keys.
    process.env.QSTASH_DEV = "true";
    const env = { ...stack().env };
    const r = await createApp().request(
      "/v1/tasks/send-email",
      {
        method: "POST",
        headers: { authorization: `Bearer ${DEV_API_KEY}`, "content-type": "application/json" },
        body: JSON.stringify({ payload: { to: "dev@celeriac.dev", subject: "QSTASH_DEV", text: "x" } }),
      },
      env,
    );
    expect(r.status).toBe(202);
    const { messageId } = await r.json();
    const held = await fetch(`${stack().broker}/v2/messages/${messageId}`, { headers: { authorization: `Bearer ${env.QSTASH_TOKEN}` } });
    // The message went to the configured broker (it may already be delivered: 200 or 404 after).
    expect([200, 404]).toContain(held.status);
    const events = await (
      await fetch(`${stack().broker}/v2/events?messageId=${messageId}`, { headers: { authorization: `Bearer ${env.QSTASH_TOKEN}` } })
    ).json();
    expect(events.events.length).toBeGreaterThan(0);
  });
});
