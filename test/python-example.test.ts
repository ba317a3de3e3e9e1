// examples/python: the Python callers (standard library only) run against the test stack, and
// what they print is checked, as is the email they cause.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DEV_API_KEY, DEV_VERIFICATION_SECRET, ROOT } from "../dev/stack.ts";
import { mailbox, stack, until } from "./helpers/api.ts";

const python = (script: string, args: string[]) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
    execFile(
      "python3",
      [join(ROOT, "examples/python", script), ...args],
      {
        env: {
          PATH: process.env.PATH!,
          CELERIAC_URL: stack().worker,
          CELERIAC_API_KEY: DEV_API_KEY,
          VERIFICATION_TOKEN_SECRET: DEV_VERIFICATION_SECRET,
        },
        timeout: 60_000,
      },
      (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
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

  it("verification_code.py: requests a code, refuses a wrong one, verifies the right one and its token", async () => {
    const email = `py-${Date.now()}@celeriac.dev`;
    const requested = await python("verification_code.py", ["request", email, "sign-in"]);
    expect(requested).toEqual({ code: 0, stdout: `code for ${email} (sign-in): succeeded\n`, stderr: "" });
    const code = await until("the code email", async () => {
      const [mail] = await mailbox.to(email);
      return mail ? /\b(\d{6})\b/.exec(mail.subject)?.[1] : undefined;
    });
    const wrong = await python("verification_code.py", ["check", email, "sign-in", code === "000000" ? "111111" : "000000"]);
    expect(wrong).toEqual({ code: 1, stdout: "not verified: wrong_code, 4 tries left\n", stderr: "" });
    const right = await python("verification_code.py", ["check", email, "sign-in", code]);
    expect(right.stderr).toBe("");
    expect(right.code).toBe(0);
    const valid = new RegExp(`^verified ${email.replace(/\./g, "\\.")} for sign-in, token valid for (\\d+) s\n$`).exec(right.stdout);
    expect(valid, right.stdout).not.toBeNull();
    // The token's own lifetime (10 minutes), as the script read it from the verified claims.
    expect(Number(valid![1])).toBeGreaterThan(0);
    expect(Number(valid![1])).toBeLessThanOrEqual(600);
    const again = await python("verification_code.py", ["check", email, "sign-in", code]);
    expect(again.stdout).toBe("not verified: code_used\n");
  });
});
