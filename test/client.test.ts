// The typed client against the Worker in workerd: each call, and each kind of error answer as its
// class with celeriac's envelope. Also: the JSON routes keep celeriac's 415 and error shape for a
// body sent without a JSON content type (never read as `{}`).
import { describe, expect, it } from "vitest";
import { DEV_API_KEY } from "../dev/stack.ts";
import {
  AuthError,
  CeleriacError,
  ConflictError,
  ConnectionError,
  createClient,
  NotFoundError,
  ValidationError,
  WaitTimeoutError,
} from "../src/client.ts";
import type { tasks } from "../tasks/index.ts";
import { mailbox, stack, unique, until } from "./helpers/api.ts";

const client = () => createClient<typeof tasks>({ url: stack().worker, apiKey: DEV_API_KEY });
const mail = (subject: string) => ({ to: "client@celeriac.dev", subject, text: "from the typed client" });

describe("typed client", () => {
  it("enqueueMany, wait, get, list", async () => {
    const subject = unique("client b");
    const [a, b] = await client().enqueueMany([
      { task: "send-email", payload: mail(unique("client a")) },
      { task: "send-email", payload: mail(subject), idempotencyKey: unique("client-b") },
    ]);
    const done = await client().wait(b!.id, { timeout: 20_000, interval: 100 });
    expect(done).toMatchObject({ id: b!.id, state: "succeeded", task: "send-email" });
    expect(await client().wait(a!.id, { timeout: 20_000 })).toMatchObject({ state: "succeeded" });
    expect(await mailbox.withSubject(subject)).toHaveLength(1);
    expect((await client().get(a!.id)).id).toBe(a!.id);
    const page = await client().list({ task: "send-email", limit: 1 });
    expect(page.tasks).toHaveLength(1);
    const next = await client().list({ task: "send-email", limit: 1, cursor: page.cursor! });
    expect(next.tasks[0]!.id).not.toBe(page.tasks[0]!.id);
  });

  it("error answers are typed classes carrying the envelope", async () => {
    const invalid = await client()
      .enqueue("send-email", { to: "nobody", subject: "x", text: "x" })
      .catch((e: unknown) => e);
    expect(invalid).toBeInstanceOf(ValidationError);
    expect(invalid).toBeInstanceOf(CeleriacError);
    expect(invalid).toMatchObject({ status: 422, code: "invalid_payload", issues: [expect.objectContaining({ path: "payload.to" })] });

    const unknown = await client()
      .get("tsk_00000000000000000000000000")
      .catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(NotFoundError);
    expect(unknown).toMatchObject({ status: 404, code: "unknown", body: { state: "unknown" } });

    const queued = await client().enqueue("send-email", mail(unique("client cancel")));
    const done = await client().wait(queued.id, { timeout: 20_000 });
    expect(done.state).toBe("succeeded");
    await expect(client().cancel(queued.id)).rejects.toSatisfy((e) => e instanceof ConflictError && e.code === "not_cancellable");

    const denied = await createClient({ url: stack().worker, apiKey: "not-a-key-of-this-relay" })
      .list()
      .catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(AuthError);
    expect(denied).toMatchObject({ status: 403, code: "invalid_api_key" });

    await expect(createClient({ url: "http://127.0.0.1:1" }).list()).rejects.toBeInstanceOf(ConnectionError);

    const later = await client().enqueue("send-email", mail(unique("client later")), { delay: "1h" });
    const timedOut = await client()
      .wait(later.id, { timeout: 300, interval: 100 })
      .catch((e: unknown) => e);
    expect(timedOut).toBeInstanceOf(WaitTimeoutError);
    expect((timedOut as WaitTimeoutError).last).toMatchObject({ id: later.id, state: "scheduled" });
    expect((await client().cancel(later.id)).state).toBe("cancelled");
  });

  it("public tasks without a key: the verification pair (request, receipt, check) as a page would call it", async () => {
    const anonymous = createClient<typeof tasks>({ url: stack().worker });
    const email = `client-${Math.random().toString(36).slice(2, 8)}@celeriac.dev`;
    const { receipt, state } = await anonymous.public.enqueue("verification", { email, purpose: "sign-in" });
    expect(state).toBe("queued");
    const code = await until("the code email", async () => {
      const [mail] = await mailbox.to(email);
      return mail ? /\b(\d{6})\b/.exec(mail.subject)?.[1] : undefined;
    });
    expect(["queued", "running", "succeeded"]).toContain((await anonymous.public.receipt(receipt)).state);
    const wrong = await anonymous.public
      .checkCode({ email, purpose: "sign-in", code: code === "000000" ? "111111" : "000000" })
      .catch((e: unknown) => e);
    expect(wrong).toBeInstanceOf(ValidationError);
    expect(wrong).toMatchObject({ status: 422, code: "wrong_code" });
    const ok = await anonymous.public.checkCode({ email, purpose: "sign-in", code });
    expect(ok).toMatchObject({ verified: true, token: expect.any(String) });
    // The API-key routes stay closed to a client without a key.
    await expect(anonymous.list()).rejects.toSatisfy((e) => e instanceof AuthError && e.status === 401);
    // @ts-expect-error public calls are typed by the task too
    await anonymous.public.enqueue("verification", { email }).catch(() => undefined);
  });

  it("a JSON body without a JSON content type is a 415 in celeriac's shape, and enqueues nothing", async () => {
    const subject = unique("no content type");
    for (const path of ["/v1/tasks/send-email", "/v1/tasks"]) {
      const body = path === "/v1/tasks" ? { tasks: [{ task: "send-email", payload: mail(subject) }] } : { payload: mail(subject) };
      const r = await fetch(stack().worker + path, {
        method: "POST",
        headers: { authorization: `Bearer ${DEV_API_KEY}` },
        body: new Blob([JSON.stringify(body)]),
      });
      expect(r.status, path).toBe(415);
      expect(await r.json()).toEqual({
        error: { code: "unsupported_media_type", message: "send the body as JSON with `Content-Type: application/json`" },
      });
    }
    const recent = await client().list({ task: "send-email", limit: 20 });
    expect(recent.tasks.some((t) => (t.payload as { subject?: string }).subject === subject)).toBe(false);
  });
});
