// celeriac as a package: a Worker of a user's own in a temporary directory depends on it by path
// (as npm links a `file:` dependency), with a task of its own. It typechecks against the shipped
// sources, bundles with `wrangler deploy --dry-run`, and that bundle runs in workerd (wrangler
// dev --no-bundle) against the test stack: enqueue → delivered → succeeded, a follow-up email in
// the sink, and a Cron Trigger run (wrangler's scheduled-event trigger) that syncs its schedule.
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEV_API_KEY, ROOT } from "../dev/stack.ts";
import { createClient } from "../src/client.ts";
import { mailbox, stack, unique, until } from "./helpers/api.ts";
import { type DevWorker, wranglerDev } from "./helpers/wrangler-dev.ts";

const dir = mkdtempSync(join(tmpdir(), "celeriac-own-worker-"));
const run = (cmd: string, args: string[]) =>
  execFileSync(process.execPath, [join(ROOT, cmd), ...args], {
    cwd: dir,
    encoding: "utf8",
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" },
  });
let worker: DevWorker;

beforeAll(async () => {
  cpSync(join(ROOT, "test/fixtures/own-worker"), dir, { recursive: true });
  const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  pkg.dependencies.celeriac = `file:${ROOT}`;
  writeFileSync(join(dir, "package.json"), JSON.stringify(pkg, null, 2));
  // What `npm install` makes of these dependencies: links (the registry's valibot is ours too).
  mkdirSync(join(dir, "node_modules/@cloudflare"), { recursive: true });
  symlinkSync(ROOT, join(dir, "node_modules/celeriac"));
  for (const dep of ["valibot", "wrangler", "@cloudflare/workers-types"])
    symlinkSync(join(ROOT, "node_modules", dep), join(dir, "node_modules", dep));
}, 120_000);

afterAll(async () => {
  await worker?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("a Worker of one's own on the celeriac package", () => {
  it("typechecks against the shipped sources (a wrong payload for its own task does not compile)", () => {
    // Fails with the compiler's messages when a type does not resolve or an @ts-expect-error is unused.
    run("node_modules/typescript/bin/tsc", ["--noEmit", "-p", join(dir, "tsconfig.json")]);
  });

  it("bundles with wrangler deploy --dry-run, and the bundle runs a task of its own end to end in workerd", async () => {
    const out = run("node_modules/wrangler/bin/wrangler.js", ["deploy", "--dry-run", "--outdir", "dist"]);
    expect(out).toMatch(/--dry-run: exiting now/);
    const bundle = readFileSync(join(dir, "dist/index.js"), "utf8");
    expect(bundle).toContain('"greet"');
    expect(bundle).not.toMatch(/from\s*["']celeriac/);
    // postal-mime and standardwebhooks aliased to celeriac's stand-ins, as in celeriac's own config.
    expect(bundle).toContain("inbound mail parsing (postal-mime) is not part of the Worker bundle");
    expect(bundle).toContain("the standardwebhooks package is not part of the Worker bundle");

    const { CELERIAC_PUBLIC_URL: _, ...env } = stack().env;
    worker = await wranglerDev(dir, ["dist/index.js", "--no-bundle"], env);
    const client = createClient({ url: worker.url, apiKey: DEV_API_KEY });
    const name = unique("Ann").replace(" ", "-");
    const queued = await client.enqueue("greet", { name, email: "ann@celeriac.dev" });
    const done = await client.wait(queued.id, { timeout: 20_000 });
    expect(done).toMatchObject({ task: "greet", state: "succeeded", attempts: 1, result: { greeting: `Hello, ${name}!`, count: 1 } });
    // The follow-up it enqueued through ctx.enqueue(sendEmail, …) was delivered and mailed once.
    const [mail] = await until("the follow-up email", async () =>
      (await mailbox.withSubject(`Hello ${name}`)).length ? mailbox.withSubject(`Hello ${name}`) : undefined,
    );
    expect(JSON.stringify(mail)).toContain("Greeting number 1");
    // Only this Worker's tasks: the template's webhook task is not part of it.
    await expect(client.enqueue("webhook", { url: "https://example.com" })).rejects.toMatchObject({ status: 404, code: "unknown_task" });
  });

  it("a Cron Trigger run (wrangler's scheduled-event trigger) makes QStash's schedules equal to its tasks'", async () => {
    const qstash = (path: string, init: RequestInit = {}) =>
      fetch(`${stack().broker}${path}`, { ...init, headers: { authorization: `Bearer ${stack().env.QSTASH_TOKEN}` } });
    const id = "celeriac-greet-hourly";
    await qstash(`/v2/schedules/${id}`, { method: "DELETE" });
    const fired = await fetch(`${worker.url}/cdn-cgi/local/scheduled?cron=${encodeURIComponent("*/10 * * * *")}&format=json`);
    expect(await fired.json()).toMatchObject({ outcome: "ok" });
    const live = await (await qstash(`/v2/schedules/${id}`)).json();
    expect(live).toMatchObject({ scheduleId: id, cron: "0 * * * *", destination: `${worker.url}/qstash/deliver` });
    expect(worker.output()).toMatch(/schedule sync \(cron "\*\/10 \* \* \* \*"\): 1 created/);
    await qstash(`/v2/schedules/${id}`, { method: "DELETE" });
  });
});
