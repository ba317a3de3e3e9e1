// `npx celeriac …` end to end against the test stack's Worker (workerd): every command, --json,
// URL and key from flags or env, one-line errors and the exit codes, and `wait` following a task
// through its retries.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEV_API_KEY, ROOT } from "../dev/stack.ts";
import { mailbox, stack, unique, until } from "./helpers/api.ts";
import { startWebhookReceiver, type WebhookReceiver } from "./helpers/webhook-receiver.ts";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI as a user would (`npx celeriac` runs this same bin), URL and key from the env. */
function celeriac(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(ROOT, "cli/celeriac.ts"), ...args],
      { env: { PATH: process.env.PATH!, CELERIAC_URL: stack().worker, CELERIAC_API_KEY: DEV_API_KEY, ...env }, timeout: 60_000 },
      (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

let rx: WebhookReceiver;
beforeAll(async () => {
  rx = await startWebhookReceiver(stack().env.CELERIAC_WEBHOOK_SECRET!);
});
afterAll(() => rx?.close());

const email = (subject: string) => JSON.stringify({ to: "cli@celeriac.dev", subject, text: "from the CLI" });

describe("celeriac CLI", () => {
  it("enqueue, get, list, and --json for scripts", async () => {
    const subject = unique("cli enqueue");
    const queued = await celeriac(["enqueue", "send-email", email(subject), "--json"]);
    expect(queued).toMatchObject({ code: 0, stderr: "" });
    const { id, state } = JSON.parse(queued.stdout);
    expect(id).toMatch(/^tsk_/);
    expect(state).toBe("queued");

    const waited = await celeriac(["wait", id, "--timeout", "20s"]);
    expect(waited.code).toBe(0);
    expect(waited.stdout).toMatch(new RegExp(`^${id} succeeded \\(send-email, attempt 1 of \\d+\\)\\n  result: \\{"emailId":"`));
    expect(await mailbox.withSubject(subject)).toHaveLength(1);

    const got = JSON.parse((await celeriac(["get", id, "--json"])).stdout);
    expect(got).toMatchObject({ id, state: "succeeded", payload: { subject } });

    const listed = await celeriac(["list", "--task", "send-email", "--state", "succeeded", "--limit", "100"]);
    expect(listed.code).toBe(0);
    expect(listed.stdout.split("\n")[0]).toMatch(/^ID\s+TASK\s+STATE\s+ATTEMPTS\s+CREATED$/);
    expect(listed.stdout).toMatch(new RegExp(`${id}\\s+send-email\\s+succeeded\\s+1\\s`));
  });

  it("wait follows a task through its retries with a progress line, and ends succeeded", async () => {
    rx.script("/cli-retry", [{ status: 503 }, { status: 503 }]);
    const run = await celeriac([
      "enqueue",
      "webhook",
      JSON.stringify({ url: `${rx.base}/cli-retry`, body: { json: { n: 1 } } }),
      "--wait",
      "--timeout",
      "30s",
    ]);
    expect(run.code).toBe(0);
    const lines = run.stderr.trim().split("\n");
    // Not a TTY: one line per change. First the enqueue, then each state seen, retries included.
    expect(lines[0]).toMatch(/^tsk_\w+ queued \(webhook\), runs at /);
    expect(lines.some((l) => / retrying, attempt [12]/.test(l))).toBe(true);
    expect(lines.at(-1)).toMatch(/ succeeded, attempt 3$/);
    expect(run.stdout).toMatch(/ succeeded \(webhook, attempt 3 of \d+\)\n {2}result: /);
    expect(rx.receipts("/cli-retry")).toHaveLength(3);
  });

  it("a task that fails for good: wait exits 1 and prints its error", async () => {
    rx.script("/cli-gone", [{ status: 410 }]);
    const run = await celeriac(["enqueue", "webhook", JSON.stringify({ url: `${rx.base}/cli-gone` }), "--wait"]);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/ failed \(webhook, attempt 1 of \d+\)\n {2}error: \w+: .*410/);
  });

  it("cancel and retry", async () => {
    const queued = JSON.parse(
      (
        await celeriac([
          "enqueue",
          "send-email",
          email(unique("cli cancel")),
          "--delay",
          "1h",
          "--retries",
          "2",
          "--attempt-timeout",
          "45s",
          "--json",
        ])
      ).stdout,
    );
    expect(queued.state).toBe("scheduled");
    expect(JSON.parse((await celeriac(["get", queued.id, "--json"])).stdout).options).toMatchObject({ retries: 2, timeout: 45 });
    const cancelled = await celeriac(["cancel", queued.id]);
    expect(cancelled).toMatchObject({ code: 0 });
    expect(cancelled.stdout).toMatch(new RegExp(`^${queued.id} cancelled`));
    // A cancelled task that was due later keeps its time when retried.
    const again = JSON.parse((await celeriac(["retry", queued.id, "--json"])).stdout);
    expect(again).toMatchObject({ id: queued.id, state: "scheduled", runAt: queued.runAt });
    expect((await celeriac(["cancel", queued.id])).code).toBe(0);

    // A failed task runs again at once, under the same id.
    rx.script("/cli-retry-failed", [{ status: 410 }]);
    const failed = await celeriac(["enqueue", "webhook", JSON.stringify({ url: `${rx.base}/cli-retry-failed` }), "--wait", "--json"]);
    expect(failed.code).toBe(1);
    const { id } = JSON.parse(failed.stdout);
    const retried = await celeriac(["retry", id, "--json"]);
    expect(retried.code).toBe(0);
    expect(JSON.parse(retried.stdout)).toMatchObject({ id, state: "queued" });
    const done = await celeriac(["wait", id, "--timeout", "20s"]);
    expect(done.code).toBe(0);
    expect(done.stdout).toMatch(new RegExp(`^${id} succeeded \\(webhook, attempt \\d+ of \\d+\\)`));
  });

  it("dead list and replay: a task QStash gave up on, run again", async () => {
    rx.script("/cli-dead", [{ status: 503 }, { status: 503 }]);
    const gaveUp = await celeriac([
      "enqueue",
      "webhook",
      JSON.stringify({ url: `${rx.base}/cli-dead` }),
      "--retries",
      "1",
      "--wait",
      "--json",
    ]);
    expect(gaveUp.code).toBe(1);
    const { id } = JSON.parse(gaveUp.stdout);
    const listed = await until("the dead letter", async () => {
      const r = await celeriac(["dead", "list", "--task", "webhook", "--limit", "100"]);
      return r.stdout.includes(id) ? r : undefined;
    });
    expect(listed.stdout).toMatch(new RegExp(`${id}\\s+webhook\\s+failed\\s+2\\s`));
    const replayed = await celeriac(["dead", "replay", id, "--json"]);
    expect(replayed.code).toBe(0);
    expect(JSON.parse(replayed.stdout)).toMatchObject({ id, state: "queued" });
    expect((await celeriac(["wait", id, "--timeout", "20s"])).code).toBe(0);
    expect((await celeriac(["dead", "replay", id])).stderr).toMatch(/^celeriac: 409 not_dead: /);
  });

  it("schedules list and sync", async () => {
    await celeriac(["schedules", "sync"]);
    const sync = await celeriac(["schedules", "sync"]);
    expect(sync.code).toBe(0);
    expect(sync.stdout).toMatch(/^created: .*\nupdated: .*\ndeleted: .*\nunchanged: .*celeriac-daily-stats-daily/m);
    const list = await celeriac(["schedules", "list", "--json"]);
    expect(JSON.parse(list.stdout).schedules).toEqual(
      expect.arrayContaining([expect.objectContaining({ id: "celeriac-daily-stats-daily", drift: [] })]),
    );
  });

  it("URL and key from flags win over the env", async () => {
    const run = await celeriac(["list", "--limit", "1", "--url", stack().worker, "--api-key", DEV_API_KEY], {
      CELERIAC_URL: "http://127.0.0.1:1",
      CELERIAC_API_KEY: "wrong",
    });
    expect(run.code).toBe(0);
  });

  it("one-line errors and exit codes: 2 usage, 3 refused, 4 unreachable, 5 wait timed out", async () => {
    const cases: [string[], Record<string, string>, number, RegExp][] = [
      [["enqueue", "send-email", "{not json"], {}, 2, /^celeriac: the payload is not JSON: /],
      [["frobnicate"], {}, 2, /^celeriac: unknown command "frobnicate"/],
      [["list", "--limit", "x"], {}, 2, /^celeriac: --limit must be a whole number$/],
      [["get"], {}, 2, /^celeriac: get needs <id>$/],
      [["list"], { CELERIAC_URL: "" }, 2, /^celeriac: no celeriac URL: pass --url or set CELERIAC_URL$/],
      [
        ["enqueue", "send-email", '{"to":"nobody"}'],
        {},
        3,
        /^celeriac: 422 invalid_payload: .*payload\.to: must be an email address.*payload\.subject/,
      ],
      [["get", "tsk_00000000000000000000000000"], {}, 3, /^celeriac: 404 unknown: no task with id tsk_0+ /],
      [["list"], { CELERIAC_API_KEY: "not-a-key-of-celeriac" }, 3, /^celeriac: 403 invalid_api_key: /],
      [["list"], { CELERIAC_URL: "http://127.0.0.1:1" }, 4, /^celeriac: cannot reach http:\/\/127\.0\.0\.1:1: /],
    ];
    for (const [args, env, code, line] of cases) {
      const run = await celeriac(args, env);
      expect({ args, code: run.code }).toEqual({ args, code });
      expect(run.stderr.split("\n").filter(Boolean), args.join(" ")).toHaveLength(1);
      expect(run.stderr.trim(), args.join(" ")).toMatch(line);
    }
    const slow = JSON.parse((await celeriac(["enqueue", "send-email", email(unique("cli slow")), "--delay", "1h", "--json"])).stdout);
    const timedOut = await celeriac(["wait", slow.id, "--timeout", "1s", "--interval", "200ms", "--json"]);
    expect(timedOut.code).toBe(5);
    expect(timedOut.stderr).toMatch(new RegExp(`^celeriac: task ${slow.id} is still scheduled after 1000 ms\\n$`));
    await celeriac(["cancel", slow.id]);
  });
});
