// The batch mailer as a unit: each email is tagged with its own task, and one to a suppressed
// recipient fails alone, unsent, while the others go out in one call.
import { describe, expect, it } from "vitest";
import { PermanentError } from "../src/errors.ts";
import { batchMailerFor } from "../src/mail.ts";
import type { Suppression } from "../src/store/delivery.ts";

const email = (to: string) => ({ from: "a@b.co", to, subject: "s", text: "t" });
const gone: Suppression = { address: "gone@d.co", reason: "bounced", at: "2026-11-29T00:00:00.000Z", taskId: "tsk_0", emailId: "e0" };
const suppressions = async (addresses: string[]) => (addresses.includes("gone@d.co") ? [gone] : []);

describe("batch mailer", () => {
  it("tags each email with its task and leaves a suppressed one out of the call", async () => {
    const calls: { emails: any[]; key: string }[] = [];
    const resend = {
      batch: {
        send: async (emails: any[], o: { idempotencyKey: string }) => (
          calls.push({ emails, key: o.idempotencyKey }),
          { data: { data: emails.map((_, i) => ({ id: `id-${i}` })) }, error: null, headers: {} }
        ),
      },
    } as never;
    const send = batchMailerFor(resend, "celeriac-batch/b1", suppressions);
    const out = await send([
      { email: email("a@d.co"), taskId: "tsk_a" },
      { email: email("Gone <GONE@d.co>"), taskId: "tsk_b" },
      { email: { ...email("c@d.co"), tags: [{ name: "celeriac_task", value: "forged" }] }, taskId: "tsk_c" },
      { email: email("gone@d.co"), taskId: "tsk_d", ignoreSuppression: true },
    ]);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.key).toBe("celeriac-batch/b1");
    expect(calls[0]!.emails.map((e) => e.tags)).toEqual([
      [{ name: "celeriac_task", value: "tsk_a" }],
      [{ name: "celeriac_task", value: "tsk_c" }],
      [{ name: "celeriac_task", value: "tsk_d" }],
    ]);
    expect(out[0]).toEqual({ id: "id-0" });
    expect((out[1] as { error: PermanentError }).error).toBeInstanceOf(PermanentError);
    expect((out[1] as { error: PermanentError }).error.code).toBe("suppressed");
    expect(out[2]).toEqual({ id: "id-1" });
    expect(out[3]).toEqual({ id: "id-2" });
  });

  it("makes no call when every email is suppressed", async () => {
    let called = false;
    const resend = { batch: { send: async () => ((called = true), { data: { data: [] }, error: null, headers: {} }) } } as never;
    const out = await batchMailerFor(resend, "k", suppressions)([{ email: email("gone@d.co"), taskId: "tsk_a" }]);
    expect(called).toBe(false);
    expect((out[0] as { error: PermanentError }).error.code).toBe("suppressed");
  });
});
