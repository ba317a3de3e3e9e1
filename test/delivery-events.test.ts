// Resend's delivery events end to end: the mail sink sends Svix-signed events for every email it
// accepts to the Worker's /webhooks/resend (in workerd), which records them on the task, remembers
// hard bounces and complaints, and refuses forged, stale and malformed events.
import { randomUUID } from "node:crypto";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { call, settle, stack, unique, until } from "./helpers/api.ts";

const address = (kind: string) => `${kind}+${randomUUID().slice(0, 8)}@resend.dev`;
const sendEmail = (to: string, extra: Record<string, unknown> = {}) =>
  call("POST", "/v1/tasks/send-email", { payload: { to, subject: unique("events"), text: "hello", ...extra } });
/** Waits until the task's delivery status is `status`. */
const deliveryOf = (id: string, status: string) =>
  until(`task ${id} delivery ${status}`, async () => {
    const r = await call("GET", `/v1/tasks/${id}`);
    return r.body.delivery?.status === status ? r.body : undefined;
  });

/** POSTs an event to the Worker as Resend would, signed with `secret` (the configured one by default). */
async function postEvent(
  event: unknown,
  opts: { secret?: string; id?: string; at?: Date; raw?: string; headers?: Record<string, string> } = {},
) {
  const body = opts.raw ?? JSON.stringify(event);
  const id = opts.id ?? `msg_${randomUUID().replaceAll("-", "")}`;
  const at = opts.at ?? new Date();
  const sig = new Webhook(opts.secret ?? stack().env.RESEND_WEBHOOK_SECRET!).sign(id, at, body);
  const r = await fetch(`${stack().worker}/webhooks/resend`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "svix-id": id,
      "svix-timestamp": String(Math.floor(at.getTime() / 1000)),
      "svix-signature": sig,
      ...opts.headers,
    },
    body,
  });
  return { status: r.status, body: await r.json() };
}
const event = (type: string, taskId: string, to: string, extra: Record<string, unknown> = {}) => ({
  type,
  created_at: new Date().toISOString(),
  data: { email_id: randomUUID(), from: "tasks@celeriac.dev", to: [to], subject: "s", tags: { celeriac_task: taskId }, ...extra },
});

describe("delivery status from Resend's events", () => {
  it("bounced@resend.dev: succeeded, delivery bounced, then suppressed for the next email", async () => {
    const to = address("bounced");
    const first = await sendEmail(to);
    const done = await settle(first.body.id);
    expect(done.state).toBe("succeeded");
    const bounced = await deliveryOf(first.body.id, "bounced");
    expect(bounced.state).toBe("succeeded");
    expect(bounced.delivery.history.map((h: any) => h.status).sort()).toEqual(["bounced", "sent"]);
    expect(bounced.delivery.history.every((h: any) => h.emailId === done.result.emailId)).toBe(true);
    expect(bounced.delivery.history.find((h: any) => h.status === "bounced").bounce.type).toBe("Permanent");

    const listed = await call("GET", `/v1/suppressions/${encodeURIComponent(to)}`);
    expect(listed.status).toBe(200);
    expect(listed.body).toMatchObject({ address: to, reason: "bounced", taskId: first.body.id, emailId: done.result.emailId });

    const second = await sendEmail(to);
    const failed = await settle(second.body.id);
    expect(failed.state).toBe("failed");
    expect(failed.attempts).toBe(1);
    expect(failed.error).toMatchObject({ code: "suppressed", retryable: false });
    expect(failed.error.message).toContain(to);

    // The enqueue may say otherwise; and once removed, the address is mailed again.
    const forced = await settle((await sendEmail(to, { ignoreSuppression: true })).body.id);
    expect(forced.state).toBe("succeeded");
    await deliveryOf(forced.id, "bounced"); // bounced again: suppressed again
    const removed = await call("DELETE", `/v1/suppressions/${encodeURIComponent(to)}`);
    expect(removed.body).toEqual({ address: to, removed: true });
    expect((await call("DELETE", `/v1/suppressions/${encodeURIComponent(to)}`)).status).toBe(404);
    expect((await settle((await sendEmail(to)).body.id)).state).toBe("succeeded");
  });

  it("delivered@ and complained@resend.dev, and a delay forced through the sink's control", async () => {
    const delivered = await sendEmail(address("delivered"));
    const complainedTo = address("complained");
    const complained = await sendEmail(complainedTo);
    const delayedTo = `ada+${randomUUID().slice(0, 8)}@celeriac.dev`;
    const control = await fetch(`${stack().sink}/_sink/outcomes`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ address: delayedTo, outcome: "delay" }),
    });
    expect(control.status).toBe(200);
    const delayed = await sendEmail(delayedTo);
    expect((await deliveryOf(delivered.body.id, "delivered")).delivery.history).toHaveLength(2);
    const c = await deliveryOf(complained.body.id, "complained");
    expect(c.delivery.history.map((h: any) => h.status)).toContain("delivered");
    expect((await call("GET", `/v1/suppressions/${encodeURIComponent(complainedTo)}`)).body.reason).toBe("complained");
    await deliveryOf(delayed.body.id, "delivery_delayed");
    const list = await call("GET", "/v1/suppressions?limit=100");
    expect(list.status).toBe(200);
    expect(list.body.suppressions).toEqual(expect.any(Array));
    // A cursor Redis cannot take (past 2^64 - 1) is the caller's mistake: a 400, not a 503.
    for (const cursor of ["18446744073709551616", "9".repeat(30)]) {
      expect(await call("GET", `/v1/suppressions?cursor=${cursor}`)).toMatchObject({
        status: 400,
        body: { error: { code: "invalid_query" } },
      });
    }
  });
});

describe("events that must change nothing", () => {
  it("refuses forged, stale, unsigned and malformed events, and acknowledges replays and strangers", async () => {
    const to = `grace+${randomUUID().slice(0, 8)}@celeriac.dev`;
    const r = await sendEmail(to);
    const before = await deliveryOf(r.body.id, "delivered");
    const bounce = event("email.bounced", r.body.id, to, { bounce: { type: "Permanent", subType: "General", message: "no" } });

    const forged = await postEvent(bounce, { secret: `whsec_${Buffer.from("not the resend secret").toString("base64")}` });
    expect(forged).toMatchObject({ status: 401, body: { error: { code: "invalid_signature" } } });
    const stale = await postEvent(bounce, { at: new Date(Date.now() - 10 * 60_000) });
    expect(stale).toMatchObject({ status: 401, body: { error: { code: "stale_event" } } });
    const unsigned = await fetch(`${stack().worker}/webhooks/resend`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(bounce),
    });
    expect(unsigned.status).toBe(401);
    const tampered = await postEvent(bounce, { headers: { "svix-signature": "v1,AAAA" } });
    expect(tampered.status).toBe(401);
    const malformed = await postEvent(null, { raw: '{"type":"email.bounced","data":"nope"}' });
    expect(malformed).toMatchObject({ status: 400, body: { error: { code: "invalid_event" } } });
    const notJson = await postEvent(null, { raw: "not json" });
    expect(notJson.status).toBe(400);

    const after = (await call("GET", `/v1/tasks/${r.body.id}`)).body;
    expect(after.delivery).toEqual(before.delivery);
    expect((await call("GET", `/v1/suppressions/${encodeURIComponent(to)}`)).status).toBe(404);

    // Strangers: an email no task sent, a task id never seen, an event type not tracked.
    expect((await postEvent(event("email.bounced", "", to))).body.ignored).toContain("not sent by a celeriac task");
    expect((await postEvent(event("email.bounced", "tsk_00000000000000000000000000", to))).body.ignored).toContain("no task");
    expect((await postEvent(event("email.opened", r.body.id, to))).body.ignored).toContain("not tracked");
    expect(
      (await postEvent({ type: "contact.created", created_at: new Date().toISOString(), data: { id: "c1", email: to } })).body.ignored,
    ).toContain("not tracked");
    expect((await postEvent({ type: "email.bounced", data: { to: [to], tags: { celeriac_task: r.body.id } } })).status).toBe(400); // no email_id

    // A genuine event changes the task once; its replay (same svix-id) is acknowledged, no more.
    const id = `msg_${randomUUID().replaceAll("-", "")}`;
    const delay = event("email.delivery_delayed", r.body.id, to);
    expect(await postEvent(delay, { id })).toMatchObject({
      status: 200,
      body: { id: r.body.id, status: "delivery_delayed", changed: false },
    });
    expect(await postEvent(delay, { id })).toMatchObject({ status: 200, body: { duplicate: true } });
    const last = (await call("GET", `/v1/tasks/${r.body.id}`)).body.delivery;
    // delivery_delayed after delivered joins the history but does not take the status back.
    expect(last.status).toBe("delivered");
    expect(last.history).toHaveLength(before.delivery.history.length + 1);
  });
  it("a RESEND_WEBHOOK_SECRET that is not base64 is the configuration's fault: 503 misconfigured, not 401", async () => {
    const { createApp } = await import("../src/app.ts");
    const body = JSON.stringify(event("email.delivered", "tsk_00000000000000000000000000", "x@celeriac.dev"));
    const at = String(Math.floor(Date.now() / 1000));
    const headers = { "content-type": "application/json", "svix-id": "msg_1", "svix-timestamp": at, "svix-signature": "v1,AAAA" };
    const r = await createApp().request(
      "/webhooks/resend",
      { method: "POST", headers, body },
      { ...stack().env, RESEND_WEBHOOK_SECRET: "whsec_a" }, // the variable's pattern allows it; base64 does not
    );
    expect(r.status).toBe(503);
    expect(await r.json()).toMatchObject({ error: { code: "misconfigured", message: expect.stringContaining("RESEND_WEBHOOK_SECRET") } });
  });
});
