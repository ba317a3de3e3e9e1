// examples/python: the Python callers (standard library only) run against the test stack, and
// what they print is checked, as is the email they cause.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DEV_API_KEY, ROOT } from "../dev/stack.ts";
import { mailbox, stack } from "./helpers/api.ts";

const python = (script: string, args: string[]) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
    execFile("python3", [join(ROOT, "examples/python", script), ...args], { env: { PATH: process.env.PATH!, CELERIAC_URL: stack().worker, CELERIAC_API_KEY: DEV_API_KEY }, timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    ),
  );

describe("examples/python", () => {
  it("order_notification.py: enqueues once (a repeat is a duplicate), waits for success, reads a refusal", async () => {
    const order = String(Date.now());
    const run = await python("order_notification.py", [order, "ada@celeriac.dev"]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    const lines = run.stdout.trim().split("\n");
    expect(lines).toHaveLength(4);
    const id = /^enqueued (tsk_\w+) \(queued\)$/.exec(lines[0]!)?.[1];
    expect(id).toBeDefined();
    expect(lines[1]).toBe(`enqueued again: ${id} (duplicate: true)`);
    expect(lines[2]).toMatch(new RegExp(`^${id} succeeded after 1 attempt\\(s\\): email \\S+$`));
    expect(lines[3]).toBe("refused: 422 invalid_payload: payload.to: must be an email address such as a@b.co or Name <a@b.co>");
    const sent = await mailbox.withSubject(`Order #${order} placed`);
    expect(sent).toHaveLength(1);
    expect(lines[2]).toContain(sent[0].id);
  });
});
