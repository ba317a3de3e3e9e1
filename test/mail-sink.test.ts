// Conformance of the local Resend stand-in, driven by the official, unchanged `resend` SDK.
import { Resend } from "resend";
import { Webhook } from "standardwebhooks";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type MailSink, startMailSink } from "../dev/mail-sink.ts";
import { startWebhookReceiver } from "./helpers/webhook-receiver.ts";

let sink: MailSink;
let resend: Resend;

const mail = (over: Record<string, unknown> = {}) => ({
  from: "Celeriac <orders@celeriac.dev>",
  to: "ada@lovelace.dev",
  subject: "Order placed",
  html: "<p>Your order is in.</p>",
  text: "Your order is in.",
  ...over,
});
// The SDK's own types insist on valid shapes; the point here is to send invalid ones.
const send = (payload: Record<string, unknown>, options: { idempotencyKey?: string } = {}) =>
  resend.emails.send(payload as unknown as Parameters<Resend["emails"]["send"]>[0], options);
const control = (path: string, init?: RequestInit) => fetch(`${sink.url}${path}`, init);
const inject = (fault: Record<string, unknown>) =>
  control("/_sink/faults", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(fault) });

beforeAll(async () => {
  // These tests send many requests a second; the limit itself is tested on sinks of its own.
  sink = await startMailSink({ port: 0, rateLimit: 0 });
  resend = new Resend("re_test_key", { baseUrl: sink.url });
});
afterAll(() => sink.close());
beforeEach(() => sink.clear());
afterEach(() => sink.clearFaults());

describe("sending", () => {
  it("accepts an email, returns a UUID and reads it back", async () => {
    const sent = await send(
      mail({ cc: ["b@lovelace.dev"], replyTo: "help@celeriac.dev", tags: [{ name: "kind", value: "order_placed" }] }),
    );
    expect(sent.error).toBeNull();
    const id = sent.data!.id;
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    const got = await resend.emails.get(id);
    expect(got.error).toBeNull();
    expect(got.data).toMatchObject({
      object: "email",
      id,
      from: "Celeriac <orders@celeriac.dev>",
      to: ["ada@lovelace.dev"],
      cc: ["b@lovelace.dev"],
      reply_to: ["help@celeriac.dev"],
      subject: "Order placed",
      html: "<p>Your order is in.</p>",
      text: "Your order is in.",
      last_event: "delivered",
    });
    expect(Number.isNaN(Date.parse(got.data!.created_at))).toBe(false);
    const [captured] = sink.emails();
    expect(sink.emails()).toHaveLength(1);
    expect(captured).toMatchObject({ id, idempotency_key: null, endpoint: "/emails", tags: [{ name: "kind", value: "order_placed" }] });
    expect(captured!.payload.subject).toBe("Order placed");
  });

  it("uses the SDK's camelCase options and reports a scheduled send", async () => {
    const sent = await resend.emails.send({
      from: "a@celeriac.dev",
      to: ["x@lovelace.dev", "y@lovelace.dev"],
      subject: "Later",
      text: "t",
      replyTo: "r@celeriac.dev",
      scheduledAt: "2030-01-01T00:00:00Z",
    });
    const got = await resend.emails.get(sent.data!.id);
    expect(got.data).toMatchObject({
      to: ["x@lovelace.dev", "y@lovelace.dev"],
      reply_to: ["r@celeriac.dev"],
      html: null,
      last_event: "scheduled",
      scheduled_at: "2030-01-01T00:00:00Z",
    });
  });

  it("answers 404 not_found for an unknown id and 422 invalid_parameter for a non-UUID", async () => {
    const missing = await resend.emails.get("00000000-0000-4000-8000-000000000000");
    expect(missing.error).toMatchObject({ statusCode: 404, name: "not_found" });
    const bad = await resend.emails.get("nope");
    expect(bad.error).toMatchObject({ statusCode: 422, name: "invalid_parameter" });
  });

  it("lists captured emails newest first over the control API", async () => {
    await send(mail({ subject: "first" }));
    await send(mail({ subject: "second" }));
    const body = (await (await control("/_sink/emails")).json()) as { emails: { subject: string; id: string; created_at: string }[] };
    expect(body.emails.map((e) => e.subject)).toEqual(["second", "first"]);
    expect(body.emails[0]!.id).toBe(sink.emails()[0]!.id);
    expect((await control("/_sink/emails", { method: "DELETE" })).status).toBe(200);
    expect(sink.emails()).toHaveLength(0);
  });
});

describe("auth and validation", () => {
  const cases: [string, Record<string, unknown>, number, string][] = [
    ["no from", mail({ from: undefined }), 422, "missing_required_field"],
    ["no to", mail({ to: undefined }), 422, "missing_required_field"],
    ["empty to", mail({ to: [] }), 422, "missing_required_field"],
    ["no subject", mail({ subject: undefined }), 422, "missing_required_field"],
    ["neither html nor text", mail({ html: undefined, text: undefined }), 422, "missing_required_field"],
    ["malformed from", mail({ from: "not an address" }), 422, "validation_error"],
    ["malformed to", mail({ to: ["ok@lovelace.dev", "bad@"] }), 422, "validation_error"],
    ["malformed cc", mail({ cc: "Name <nope>" }), 422, "validation_error"],
    ["51 recipients", mail({ to: Array.from({ length: 51 }, (_, i) => `u${i}@lovelace.dev`) }), 422, "invalid_parameter"],
    ["non-string subject", mail({ subject: 42 }), 422, "invalid_parameter"],
    ["bad tag", mail({ tags: [{ name: "has space", value: "x" }] }), 422, "invalid_parameter"],
    ["bad scheduledAt", mail({ scheduledAt: "whenever" }), 422, "invalid_parameter"],
    ["attachment without content or path", mail({ attachments: [{ filename: "a.txt" }] }), 422, "invalid_attachment"],
    ["to @example.com", mail({ to: "someone@example.com" }), 422, "invalid_attachment"],
    ["bcc @test.com", mail({ bcc: "Someone <s@test.com>" }), 422, "invalid_attachment"],
  ];
  it.each(cases)("%s → %i %s", async (_label, payload, statusCode, name) => {
    const { data, error } = await send(payload);
    expect(data).toBeNull();
    expect(error).toMatchObject({ statusCode, name });
    expect(typeof error!.message).toBe("string");
    expect(sink.emails()).toHaveLength(0);
  });

  it("accepts attachments with content or path", async () => {
    const { error } = await send(
      mail({ attachments: [{ filename: "a.txt", content: Buffer.from("hi") }, { path: "https://celeriac.dev/a.pdf" }] }),
    );
    expect(error).toBeNull();
    expect(sink.emails()[0]!.attachments).toHaveLength(2);
  });

  it("401 missing_api_key without Authorization, 403 invalid_api_key for a wrong key", async () => {
    const none = await fetch(`${sink.url}/emails`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(mail()),
    });
    expect(none.status).toBe(401);
    expect(await none.json()).toMatchObject({ statusCode: 401, name: "missing_api_key" });
    const notResend = await new Resend("sk_live_other", { baseUrl: sink.url }).emails.send(mail());
    expect(notResend.error).toMatchObject({ statusCode: 403, name: "invalid_api_key" });
    const strict = await startMailSink({ port: 0, apiKey: "re_right" });
    try {
      const wrong = await new Resend("re_wrong", { baseUrl: strict.url }).emails.send(mail());
      expect(wrong.error).toMatchObject({ statusCode: 403, name: "invalid_api_key" });
      const right = await new Resend("re_right", { baseUrl: strict.url }).emails.send(mail());
      expect(right.error).toBeNull();
      expect(strict.emails()).toHaveLength(1);
    } finally {
      await strict.close();
    }
  });

  it("400 validation_error for a body that is not JSON", async () => {
    const res = await fetch(`${sink.url}/emails`, {
      method: "POST",
      headers: { authorization: "Bearer re_x", "content-type": "text/plain" },
      body: "hello",
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ statusCode: 400, name: "validation_error" });
  });
});

describe("batch", () => {
  const good = (n: number) => Array.from({ length: n }, (_, i) => mail({ subject: `batch ${i}` }));

  it("sends a strict batch and returns one id per email", async () => {
    const { data, error } = await resend.batch.send(good(3) as never);
    expect(error).toBeNull();
    expect(data!.data).toHaveLength(3);
    expect(new Set(data!.data.map((d) => d.id)).size).toBe(3);
    expect(sink.emails().map((e) => e.subject)).toEqual(["batch 2", "batch 1", "batch 0"]);
    expect(sink.emails()[0]!.endpoint).toBe("/emails/batch");
  });

  it("strict rejects the whole batch on one bad email", async () => {
    const { data, error } = await resend.batch.send([...good(2), mail({ to: "bad" })] as never);
    expect(data).toBeNull();
    expect(error).toMatchObject({ statusCode: 422, name: "validation_error" });
    expect(error!.message).toContain("emails[2]");
    expect(sink.emails()).toHaveLength(0);
  });

  it("permissive sends the good ones and lists the bad by index", async () => {
    const batch = [
      mail({ subject: "ok 0" }),
      mail({ subject: undefined }),
      mail({ subject: "ok 2" }),
      mail({ attachments: [{ path: "https://x.dev/a" }] }),
    ];
    const { data, error } = await resend.batch.send(batch as never, { batchValidation: "permissive" });
    expect(error).toBeNull();
    expect(data!.data).toHaveLength(2);
    expect(data!.errors.map((e) => e.index)).toEqual([1, 3]);
    expect(data!.errors[0]!.message).toContain("subject");
    expect(sink.emails().map((e) => e.subject)).toEqual(["ok 2", "ok 0"]);
  });

  it("refuses more than 100 emails and scheduled_at", async () => {
    const big = await resend.batch.send(good(101) as never);
    expect(big.error).toMatchObject({ statusCode: 422, name: "validation_error" });
    const scheduled = await resend.batch.send([mail({ scheduledAt: "2030-01-01T00:00:00Z" })] as never);
    expect(scheduled.error).toMatchObject({ statusCode: 422, name: "invalid_parameter" });
    expect(sink.emails()).toHaveLength(0);
  });
});

describe("idempotency", () => {
  it("same key and payload → the original id and one email", async () => {
    const first = await send(mail(), { idempotencyKey: "order-1" });
    const again = await send(mail(), { idempotencyKey: "order-1" });
    expect(again.error).toBeNull();
    expect(again.data!.id).toBe(first.data!.id);
    expect(sink.emails()).toHaveLength(1);
    expect(sink.emails()[0]!.idempotency_key).toBe("order-1");
  });

  it("same key, different payload → 409 invalid_idempotent_request", async () => {
    await send(mail(), { idempotencyKey: "order-2" });
    const other = await send(mail({ subject: "changed" }), { idempotencyKey: "order-2" });
    expect(other.error).toMatchObject({ statusCode: 409, name: "invalid_idempotent_request" });
    expect(sink.emails()).toHaveLength(1);
  });

  it("works for batches too", async () => {
    const emails = [mail({ subject: "b0" }), mail({ subject: "b1" })] as never;
    const first = await resend.batch.send(emails, { idempotencyKey: "batch-1" });
    const again = await resend.batch.send(emails, { idempotencyKey: "batch-1" });
    expect(again.data!.data).toEqual(first.data!.data);
    expect(sink.emails()).toHaveLength(2);
  });

  it("key still in flight → 409 concurrent_idempotent_requests", async () => {
    sink.inject({ mode: "delay", delayMs: 400 });
    const slow = send(mail(), { idempotencyKey: "order-3" });
    await new Promise((r) => setTimeout(r, 150));
    const racing = await send(mail(), { idempotencyKey: "order-3" });
    expect(racing.error).toMatchObject({ statusCode: 409, name: "concurrent_idempotent_requests" });
    const done = await slow;
    expect(done.error).toBeNull();
    expect(sink.emails().map((e) => e.id)).toEqual([done.data!.id]);
  });

  it("key of 0 or 257 chars → 400 invalid_idempotency_key", async () => {
    const long = await send(mail(), { idempotencyKey: "k".repeat(257) });
    expect(long.error).toMatchObject({ statusCode: 400, name: "invalid_idempotency_key" });
    const empty = await fetch(`${sink.url}/emails`, {
      method: "POST",
      headers: { authorization: "Bearer re_x", "content-type": "application/json", "idempotency-key": "" },
      body: JSON.stringify(mail()),
    });
    expect(empty.status).toBe(400);
    expect(await send(mail(), { idempotencyKey: "k".repeat(256) })).toMatchObject({ error: null });
    expect(sink.emails()).toHaveLength(1);
  });
});

describe("rate limits", () => {
  it("is Resend's by default: 5 calls in a second pass, the 6th gets 429 with Resend's headers", async () => {
    const limited = await startMailSink({ port: 0 });
    try {
      const client = new Resend("re_limited", { baseUrl: limited.url });
      const replies = [];
      for (let i = 0; i < 6; i++) replies.push(await client.emails.send(mail({ subject: `n${i}` })));
      replies.slice(0, 5).forEach((r, i) => {
        expect(r.error).toBeNull();
        expect(r.headers).toMatchObject({ "ratelimit-limit": "5", "ratelimit-remaining": String(4 - i) });
        expect(Number(r.headers!["ratelimit-reset"])).toBeGreaterThanOrEqual(1);
      });
      const sixth = replies[5]!;
      expect(sixth.error).toMatchObject({ statusCode: 429, name: "rate_limit_exceeded" });
      expect(sixth.headers).toMatchObject({
        "ratelimit-limit": "5",
        "ratelimit-remaining": "0",
        "retry-after": "1",
        "ratelimit-reset": "1",
      });
      expect(limited.emails()).toHaveLength(5);
      // A batch call is one request: it waits for room like any other.
      const batch = await client.batch.send([mail({ subject: "b1" }), mail({ subject: "b2" })]);
      expect(batch.error).toMatchObject({ statusCode: 429 });
      // Another API key has a window of its own.
      const other = await new Resend("re_other", { baseUrl: limited.url }).emails.send(mail());
      expect(other.error).toBeNull();
    } finally {
      await limited.close();
    }
  });

  it("frees room as the sliding window moves, and the limit and window are configurable", async () => {
    const tight = await startMailSink({ port: 0, rateLimit: 2, rateWindowMs: 300 });
    try {
      const client = new Resend("re_tight", { baseUrl: tight.url });
      expect((await client.emails.send(mail())).error).toBeNull();
      expect((await client.emails.send(mail())).headers!["ratelimit-remaining"]).toBe("0");
      expect((await client.emails.send(mail())).error).toMatchObject({ statusCode: 429, name: "rate_limit_exceeded" });
      await new Promise((r) => setTimeout(r, 350));
      expect((await client.emails.send(mail())).error).toBeNull();
      expect(tight.emails()).toHaveLength(3);
    } finally {
      await tight.close();
    }
  });

  it("switched off (rateLimit 0): no 429 and no ratelimit headers", async () => {
    const replies = [];
    for (let i = 0; i < 8; i++) replies.push(await send(mail()));
    expect(replies.every((r) => r.error === null)).toBe(true);
    expect(replies[0]!.headers!["ratelimit-limit"]).toBeUndefined();
  });

  it("adds the configured latency to every send", async () => {
    const slow = await startMailSink({ port: 0, rateLimit: 0, latencyMs: 120 });
    try {
      const client = new Resend("re_slow", { baseUrl: slow.url });
      // Not a timing assertion on our code: the sink must not answer before its own knob allows.
      const t = performance.now();
      expect((await client.emails.send(mail())).error).toBeNull();
      expect(performance.now() - t).toBeGreaterThanOrEqual(115);
    } finally {
      await slow.close();
    }
  });
});

describe("fault injection", () => {
  it("500 → SDK error, nothing captured, then normal again", async () => {
    expect((await inject({ mode: "500", count: 2 })).status).toBe(200);
    const a = await send(mail());
    const b = await resend.batch.send([mail()] as never);
    expect(a.error).toMatchObject({ statusCode: 500, name: "internal_server_error" });
    expect(b.error).toMatchObject({ statusCode: 500, name: "internal_server_error" });
    expect(sink.emails()).toHaveLength(0);
    expect((await send(mail())).error).toBeNull();
  });

  it("429 → rate_limit_exceeded with the injected retry-after", async () => {
    await inject({ mode: "429", retryAfter: 7 });
    const r = await send(mail());
    expect(r.error).toMatchObject({ statusCode: 429, name: "rate_limit_exceeded" });
    expect(r.headers!["retry-after"]).toBe("7");
    expect(sink.emails()).toHaveLength(0);
  });

  it("delay → the reply comes after delayMs and the email is sent", async () => {
    await inject({ mode: "delay", delayMs: 300 });
    const started = performance.now();
    const r = await send(mail());
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
    expect(r.error).toBeNull();
    expect(sink.emails()).toHaveLength(1);
  });

  it("drop → the SDK reports a network error and nothing is captured", async () => {
    await inject({ mode: "drop" });
    const r = await send(mail(), { idempotencyKey: "drop-1" });
    expect(r.data).toBeNull();
    expect(r.error).toMatchObject({ name: "application_error", statusCode: null });
    expect(sink.emails()).toHaveLength(0);
    const retry = await send(mail(), { idempotencyKey: "drop-1" });
    expect(retry.error).toBeNull();
    expect(sink.emails()).toHaveLength(1);
  });

  it("accept-then-drop → error, captured once, and a keyed retry gets the same id", async () => {
    await inject({ mode: "accept-then-drop" });
    const r = await send(mail(), { idempotencyKey: "crash-1" });
    expect(r.error).toMatchObject({ name: "application_error", statusCode: null });
    expect(sink.emails()).toHaveLength(1);
    const captured = sink.emails()[0]!;
    const retry = await send(mail(), { idempotencyKey: "crash-1" });
    expect(retry.error).toBeNull();
    expect(retry.data!.id).toBe(captured.id);
    expect(sink.emails()).toHaveLength(1);
  });

  it("queues faults in order, lists and clears them", async () => {
    await inject({ mode: "429" });
    sink.inject({ mode: "500" });
    const listed = (await (await control("/_sink/faults")).json()) as { faults: { mode: string }[] };
    expect(listed.faults.map((f) => f.mode)).toEqual(["429", "500"]);
    expect((await send(mail())).error!.statusCode).toBe(429);
    expect((await control("/_sink/faults", { method: "DELETE" })).status).toBe(200);
    expect((await send(mail())).error).toBeNull();
  });

  it("refuses a malformed fault", async () => {
    const r = await inject({ mode: "explode" });
    expect(r.status).toBe(400);
    expect(() => sink.inject({ mode: "delay", count: 0 })).toThrow(/count/);
  });
});

describe("mailbox page", () => {
  it("lists emails with escaped subjects and renders one in a sandboxed iframe", async () => {
    const { data } = await send(
      mail({ subject: "<script>alert(1)</script> & co", html: `<h1 class="x">Hi "you"</h1>`, text: "plain <text>" }),
    );
    const list = await control("/");
    expect(list.headers.get("content-type")).toContain("text/html");
    const listHtml = await list.text();
    expect(listHtml).toContain("&#60;script&#62;alert(1)&#60;/script&#62; &#38; co");
    expect(listHtml).not.toContain("<script>");
    expect(listHtml).toContain(`/_sink/emails/${data!.id}/html`);
    expect(listHtml).toContain("orders@celeriac.dev");
    const view = await (await control(`/_sink/emails/${data!.id}/html`)).text();
    expect(view).toContain(`<iframe sandbox srcdoc="&#60;h1 class=&#34;x&#34;&#62;Hi &#34;you&#34;&#60;/h1&#62;"`);
    expect(view).toContain("<pre>plain &#60;text&#62;</pre>");
    expect(view).not.toContain("<script>");
    expect((await control("/_sink/emails/nope/html")).status).toBe(404);
  });
});

describe("delivery events", () => {
  const secret = `whsec_${Buffer.from("mail sink test secret").toString("base64")}`;

  it("POSTs Svix-signed events per test address, in order, retrying a 503, and honours a forced outcome", async () => {
    const rx = await startWebhookReceiver(secret);
    try {
      rx.script("/resend", [{ status: 503 }]);
      sink.sendEventsTo({ url: `${rx.base}/resend`, secret });
      const tags = [{ name: "celeriac_task", value: "tsk_x" }];
      const sent = await Promise.all([
        send(mail({ to: "delivered+a@resend.dev", tags })),
        send(mail({ to: "Bounced <bounced+b@resend.dev>" })),
        send(mail({ to: "complained@resend.dev" })),
      ]);
      sink.force("ada@lovelace.dev", "delay", 1);
      const delayed = await send(mail());
      const ids = [...sent, delayed].map((r) => r.data!.id);
      const byEmail = () => {
        const got = new Map<string, string[]>();
        for (const r of rx.receipts("/resend")) {
          const e = JSON.parse(r.body);
          got.set(e.data.email_id, [...(got.get(e.data.email_id) ?? []), e.type]);
        }
        return got;
      };
      const deadline = Date.now() + 10_000;
      while (byEmail().size < 4 || [...byEmail().values()].flat().length < 10) {
        if (Date.now() > deadline) throw new Error(`events so far: ${JSON.stringify([...byEmail()])}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const got = byEmail(); // 9 events, one of them sent twice
      // The first POST got a 503 and was retried: its type appears twice, under one svix-id.
      const all = rx.receipts("/resend");
      expect(all.filter((r) => r.headers["svix-id"] === all[0]!.headers["svix-id"])).toHaveLength(2);
      expect(all).toHaveLength(10);
      const dedupe = (types: string[]) => types.filter((t, i) => types.indexOf(t) === i);
      expect(dedupe(got.get(ids[0]!)!)).toEqual(["email.sent", "email.delivered"]);
      expect(dedupe(got.get(ids[1]!)!)).toEqual(["email.sent", "email.bounced"]);
      expect(dedupe(got.get(ids[2]!)!)).toEqual(["email.sent", "email.delivered", "email.complained"]);
      expect(dedupe(got.get(ids[3]!)!)).toEqual(["email.sent", "email.delivery_delayed"]);
      const verifier = new Webhook(secret);
      for (const r of rx.receipts("/resend")) {
        const h = r.headers;
        const e = verifier.verify(r.body, {
          "webhook-id": h["svix-id"]!,
          "webhook-timestamp": h["svix-timestamp"]!,
          "webhook-signature": h["svix-signature"]!,
        }) as any;
        expect(e.created_at).toEqual(expect.any(String));
        if (e.data.email_id === ids[0]) expect(e.data.tags).toEqual({ celeriac_task: "tsk_x" });
        if (e.type === "email.bounced") expect(e.data.bounce.type).toBe("Permanent");
      }
      expect((await resend.emails.get(ids[1]!)).data!.last_event).toBe("bounced");
      expect(
        sink
          .events()
          .filter((e) => e.emailId === ids[0])
          .every((e) => e.status === 200),
      ).toBe(true);
    } finally {
      sink.sendEventsTo(null);
      await rx.close();
    }
  });

  it("refuses a malformed outcome control", async () => {
    const post = (body: unknown) =>
      control("/_sink/outcomes", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    expect((await post({ address: "a@b.co", outcome: "explode" })).status).toBe(400);
    expect((await post({ address: "not an address", outcome: "bounce" })).status).toBe(400);
    expect((await post({ address: "a@b.co", outcome: "bounce", count: 2 })).status).toBe(200);
    expect((await (await control("/_sink/outcomes")).json()).outcomes).toEqual([{ address: "a@b.co", outcome: "bounce", remaining: 2 }]);
    expect(() => sink.force("a@b.co", "bounce", 0)).toThrow(/count/);
  });
});
