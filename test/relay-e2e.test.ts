// End to end against the Worker in workerd: the caller's API, the local broker's signed
// deliveries, Redis through the Upstash-REST bridge, and mail into the sink.
import { afterEach, describe, expect, it } from "vitest";
import { broker, call, mailbox, settle, sign, stack, unique, until } from "./helpers/api.ts";

const email = (subject: string, extra: Record<string, unknown> = {}) => ({
  payload: { to: "ada@celeriac.dev", subject, text: `hello from ${subject}`, ...extra },
});

afterEach(() => mailbox.clearFaults());

describe("enqueue → delivery → mail", () => {
  it("sends an email and reports it succeeded", async () => {
    const subject = unique("order placed");
    const r = await call("POST", "/v1/tasks/send-email", email(subject));
    expect(r.status).toBe(202);
    expect(r.body).toMatchObject({ task: "send-email", state: "queued", duplicate: false });
    expect(r.body.id).toMatch(/^tsk_[0-9a-z]{26}$/);

    const done = await settle(r.body.id);
    expect(done.state).toBe("succeeded");
    expect(done.attempts).toBe(1);
    expect(done.result.emailId).toEqual(expect.any(String));
    expect(done.history.map((h: any) => h.state)).toEqual(["succeeded", "running", "queued"]);
    const sent = await mailbox.withSubject(subject);
    expect(sent).toHaveLength(1);
    expect(sent[0].id).toBe(done.result.emailId);
  });

  it("honours a delay: scheduled first, sent only after it is due", async () => {
    const subject = unique("delayed");
    const before = Date.now();
    const r = await call("POST", "/v1/tasks/send-email", { ...email(subject), delay: "30s" });
    expect(r.status).toBe(202);
    expect(r.body.state).toBe("scheduled");
    expect(Date.parse(r.body.runAt) - before).toBeGreaterThanOrEqual(29_000);
    // The broker runs at time scale 0.05: 30 s become 1.5 s. Not sent right away…
    await new Promise((res) => setTimeout(res, 300));
    expect(await mailbox.withSubject(subject)).toHaveLength(0);
    expect((await call("GET", `/v1/tasks/${r.body.id}`)).body.state).toBe("scheduled");
    // …but sent once due.
    expect((await settle(r.body.id)).state).toBe("succeeded");
    expect(await mailbox.withSubject(subject)).toHaveLength(1);
  });

  it("retries through a 500 and a 429 from Resend and sends exactly one email", async () => {
    await mailbox.fault({ mode: "500", count: 1 });
    await mailbox.fault({ mode: "429", count: 1, retryAfter: 1 });
    const subject = unique("retried");
    const r = await call("POST", "/v1/tasks/send-email", email(subject));
    const done = await settle(r.body.id);
    expect(done.state).toBe("succeeded");
    expect(done.attempts).toBe(3);
    const errors = done.history.filter((h: any) => h.state === "retrying").map((h: any) => h.error.code);
    expect(errors.sort()).toEqual(["error", "rate_limit_exceeded"].sort());
    expect(await mailbox.withSubject(subject)).toHaveLength(1);
  });

  it("fails at once, without retry, when Resend rejects the email (422)", async () => {
    const subject = unique("rejected");
    // The sink, like Resend, refuses to send to example.com.
    const r = await call("POST", "/v1/tasks/send-email", email(subject, { to: "someone@example.com" }));
    const done = await settle(r.body.id);
    expect(done.state).toBe("failed");
    expect(done.attempts).toBe(1);
    expect(done.error.retryable).toBe(false);
    expect(await mailbox.withSubject(subject)).toHaveLength(0);
  });

  it("sends one email when Resend accepted it but the answer was lost", async () => {
    await mailbox.fault({ mode: "accept-then-drop", count: 1 });
    const subject = unique("lost answer");
    const r = await call("POST", "/v1/tasks/send-email", email(subject));
    const done = await settle(r.body.id);
    expect(done.state).toBe("succeeded");
    expect(done.attempts).toBe(2);
    expect(await mailbox.withSubject(subject)).toHaveLength(1);
  });
});

describe("effectively once", () => {
  it("acknowledges a redelivery of a finished task without running it", async () => {
    const subject = unique("redelivered");
    const r = await call("POST", "/v1/tasks/send-email", email(subject));
    await settle(r.body.id);
    const { statuses } = await broker.deliver(r.body.messageId, 2);
    expect(statuses).toEqual([200, 200]);
    expect(await mailbox.withSubject(subject)).toHaveLength(1);
    expect((await call("GET", `/v1/tasks/${r.body.id}`)).body.attempts).toBe(1);
  });

  it("runs two concurrent deliveries of one message once", async () => {
    const subject = unique("concurrent");
    // Slow Resend down so both copies overlap.
    await mailbox.fault({ mode: "delay", count: 1, delayMs: 500 });
    const r = await call("POST", "/v1/tasks/send-email", { ...email(subject), delay: "60s" });
    const { statuses } = await broker.deliver(r.body.messageId, 2);
    // send-email is coalesced: both copies join the outbox, where the task can sit only once.
    expect(statuses.sort()).toEqual([200, 200]);
    const done = await settle(r.body.id);
    expect(done.state).toBe("succeeded");
    expect(done.attempts).toBe(1);
    expect(await mailbox.withSubject(subject)).toHaveLength(1);
    await call("DELETE", `/v1/tasks/${r.body.id}`); // the scheduled original: 409, it already ran
  });

  it("returns the first task for a repeated idempotency key", async () => {
    const subject = unique("idempotent");
    const key = unique("order-42").replace(" ", "-");
    const a = await call("POST", "/v1/tasks/send-email", email(subject), { headers: { "idempotency-key": key } });
    const b = await call("POST", "/v1/tasks/send-email", { ...email(subject), idempotencyKey: key });
    expect(a.status).toBe(202);
    expect(b.status).toBe(200);
    expect(b.body).toMatchObject({ id: a.body.id, duplicate: true });
    await settle(a.body.id);
    await new Promise((res) => setTimeout(res, 300));
    expect(await mailbox.withSubject(subject)).toHaveLength(1);
  });
});

describe("idempotency under concurrency", () => {
  it("five concurrent requests with one key make one task, one message and one email", async () => {
    const subject = unique("concurrent key");
    const key = unique("order").replace(" ", "-");
    const rs = await Promise.all(
      Array.from({ length: 5 }, () => call("POST", "/v1/tasks/send-email", email(subject), { headers: { "idempotency-key": key } })),
    );
    expect(new Set(rs.map((r) => r.body.id)).size).toBe(1);
    expect(new Set(rs.map((r) => r.body.messageId)).size).toBe(1);
    expect(rs.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 202]);
    expect((await settle(rs[0]!.body.id)).state).toBe("succeeded");
    await new Promise((res) => setTimeout(res, 300));
    expect(await mailbox.withSubject(subject)).toHaveLength(1);
  });

  it("refuses a key reused for another payload (409) and changes nothing", async () => {
    const key = unique("reuse").replace(" ", "-");
    const first = unique("first");
    const a = await call("POST", "/v1/tasks/send-email", { ...email(first), delay: "1h" }, { headers: { "idempotency-key": key } });
    const b = await call("POST", "/v1/tasks/send-email", email(unique("second")), { headers: { "idempotency-key": key } });
    expect(b.status).toBe(409);
    expect(b.body.error.code).toBe("idempotency_key_reused");
    expect((await call("GET", `/v1/tasks/${a.body.id}`)).body).toMatchObject({ state: "scheduled", payload: { subject: first } });
    await call("DELETE", `/v1/tasks/${a.body.id}`);
  });
});

describe("cancel and retry", () => {
  it("cancels a task before it is due; nothing is sent", async () => {
    const subject = unique("cancelled");
    const r = await call("POST", "/v1/tasks/send-email", { ...email(subject), delay: "20s" });
    const c = await call("DELETE", `/v1/tasks/${r.body.id}`);
    expect(c.status).toBe(200);
    expect(c.body.state).toBe("cancelled");
    // Past the due time (1 s at this time scale), still nothing.
    await new Promise((res) => setTimeout(res, 1_500));
    expect(await mailbox.withSubject(subject)).toHaveLength(0);
    expect((await call("GET", `/v1/tasks/${r.body.id}`)).body.state).toBe("cancelled");
    // A finished task cannot be cancelled.
    const s = await call("POST", "/v1/tasks/send-email", email(unique("done")));
    await settle(s.body.id);
    const late = await call("DELETE", `/v1/tasks/${s.body.id}`);
    expect(late.status).toBe(409);
    expect(late.body.error.code).toBe("not_cancellable");
  });

  it("re-enqueues a failed task on retry", async () => {
    const subject = unique("retry me");
    const r = await call("POST", "/v1/tasks/send-email", email(subject, { to: "x@example.com" }));
    expect((await settle(r.body.id)).state).toBe("failed");
    const again = await call("POST", `/v1/tasks/${r.body.id}/retry`);
    expect(again.status).toBe(202);
    expect(again.body.state).toBe("queued");
    const done = await settle(r.body.id);
    expect(done.state).toBe("failed");
    expect(done.attempts).toBe(2);
  });

  it("retrying a cancelled task that was due later keeps its due time", async () => {
    const subject = unique("cancelled then retried");
    const r = await call("POST", "/v1/tasks/send-email", { ...email(subject), delay: "1h" });
    await call("DELETE", `/v1/tasks/${r.body.id}`);
    const again = await call("POST", `/v1/tasks/${r.body.id}/retry`);
    expect(again.status).toBe(202);
    expect(again.body).toMatchObject({ state: "scheduled", runAt: r.body.runAt });
    await new Promise((res) => setTimeout(res, 1_000)); // a run "at once" would have sent by now
    expect(await mailbox.withSubject(subject)).toHaveLength(0);
    expect((await call("GET", `/v1/tasks/${r.body.id}`)).body.state).toBe("scheduled");
    expect((await call("DELETE", `/v1/tasks/${r.body.id}`)).body.state).toBe("cancelled");
  });
});

describe("signed deliveries only", () => {
  const deliverUrl = () => `${stack().env.CELERIAC_PUBLIC_URL}/qstash/deliver`;
  const message = (subject: string) =>
    JSON.stringify({
      v: 1,
      id: `tsk_${"0".repeat(10)}${Math.random().toString(36).slice(2, 18).padEnd(16, "0")}`.slice(0, 30),
      task: "send-email",
      payload: { to: "ada@celeriac.dev", subject, text: "forged" },
      options: { retries: 0, timeout: 10, resultTtl: 60 },
      createdAt: Date.now(),
      runAt: Date.now(),
    });
  const post = (body: string, signature?: string) =>
    fetch(deliverUrl(), {
      method: "POST",
      headers: { "content-type": "application/json", ...(signature ? { "upstash-signature": signature } : {}) },
      body,
    });

  it("rejects unsigned, forged, tampered and expired deliveries with 401 and sends nothing", async () => {
    const subject = unique("forged");
    const body = message(subject);
    const key = stack().env.QSTASH_CURRENT_SIGNING_KEY!;
    const other = message(unique("original"));
    const now = Math.floor(Date.now() / 1000);
    const cases = {
      unsigned: await post(body),
      "wrong key": await post(body, sign({ key: "sig_not_the_key", url: deliverUrl(), body })),
      "other body": await post(body, sign({ key, url: deliverUrl(), body: other })),
      "other url": await post(body, sign({ key, url: "http://evil.example/qstash/deliver", body })),
      expired: await post(body, sign({ key, url: deliverUrl(), body, iat: now - 900, exp: now - 600 })),
    };
    for (const [name, r] of Object.entries(cases)) expect([name, r.status]).toEqual([name, 401]);
    await new Promise((res) => setTimeout(res, 200));
    expect(await mailbox.withSubject(subject)).toHaveLength(0);
    // The same body, properly signed, is accepted: the checks above failed for the right reason.
    const ok = await post(body, sign({ key, url: deliverUrl(), body }));
    expect(ok.status).toBe(200);
    // send-email is coalesced: the email goes out with its batch, up to maxWaitMs later.
    await until("the email", async () => ((await mailbox.withSubject(subject)).length ? true : undefined));
    await new Promise((res) => setTimeout(res, 200));
    expect(await mailbox.withSubject(subject)).toHaveLength(1);
  });
});

describe("caller errors", () => {
  it("answers each mistake with its status and code, and enqueues nothing", async () => {
    const mark = unique("mistake");
    const email = (_: string, extra: Record<string, unknown> = {}) => ({
      payload: { to: "ada@celeriac.dev", subject: mark, text: "x", ...extra },
    });
    const cases: [string, Promise<{ status: number; body: any }>, number, string][] = [
      ["no key", call("POST", "/v1/tasks/send-email", email("x"), { headers: { authorization: "" } }), 401, "missing_api_key"],
      [
        "wrong key",
        call("POST", "/v1/tasks/send-email", email("x"), { headers: { authorization: "Bearer nope-nope-nope-nope" } }),
        403,
        "invalid_api_key",
      ],
      ["unknown task", call("POST", "/v1/tasks/launch-rocket", email("x")), 404, "unknown_task"],
      ["bad JSON", call("POST", "/v1/tasks/send-email", undefined, { raw: "{nope" }), 400, "invalid_json"],
      [
        "not JSON",
        call("POST", "/v1/tasks/send-email", undefined, { raw: "to=a", headers: { "content-type": "text/plain" } }),
        415,
        "unsupported_media_type",
      ],
      ["too large", call("POST", "/v1/tasks/send-email", email("x", { text: "x".repeat(1_100_000) })), 413, "body_too_large"],
      ["bad option", call("POST", "/v1/tasks/send-email", { ...email("x"), delay: "soon" }), 400, "invalid_options"],
      ["unknown option", call("POST", "/v1/tasks/send-email", { ...email("x"), priority: 1 }), 400, "invalid_options"],
      ["bad payload", call("POST", "/v1/tasks/send-email", { payload: { to: "not-an-address", subject: "" } }), 422, "invalid_payload"],
      ["unknown id", call("GET", "/v1/tasks/tsk_00000000000000000000000000"), 404, "unknown"],
      ["not a task id", call("GET", "/v1/tasks/tsk_00000000000000000000000000:h"), 404, "unknown"],
      ["cancel a non-id", call("DELETE", "/v1/tasks/..%2F..%2Fetc"), 404, "unknown"],
      ["retry a non-id", call("POST", "/v1/tasks/x/retry"), 404, "unknown"],
      ["bad list state", call("GET", "/v1/tasks?state=pending"), 400, "invalid_query"],
      ["bad cursor", call("GET", "/v1/tasks?cursor=zzz"), 400, "invalid_query"],
    ];
    for (const [name, pending, status, code] of cases) {
      const r = await pending;
      expect([name, r.status, r.body?.error?.code]).toEqual([name, status, code]);
    }
    const bad = await call("POST", "/v1/tasks/send-email", { payload: { to: "not-an-address", subject: "" } });
    expect(bad.body.error.issues.map((i: any) => i.path).sort()).toEqual(["payload", "payload.subject", "payload.to"].sort());
    const unknown = await call("GET", "/v1/tasks/tsk_00000000000000000000000000");
    expect(unknown.body.state).toBe("unknown");
    // Other test files enqueue meanwhile, so look for these requests' own subject.
    const newest = (await call("GET", "/v1/tasks?task=send-email&limit=100")).body.tasks;
    expect(newest.filter((t: any) => t.payload?.subject === mark)).toEqual([]);
  });

  it("rejects a batch with one bad item (422, per index) and enqueues none of it", async () => {
    const subject = unique("batch");
    const r = await call("POST", "/v1/tasks", {
      tasks: [
        { task: "send-email", ...email(subject) },
        { task: "send-email", payload: { to: "nobody", subject, text: "x" } },
        { task: "no-such-task", payload: {} },
      ],
    });
    expect(r.status).toBe(422);
    expect(r.body.error.code).toBe("invalid_batch");
    expect(r.body.error.issues.map((i: any) => i.path)).toEqual(["tasks.1.payload.to", "tasks.2.task"]);
    await new Promise((res) => setTimeout(res, 300));
    expect(await mailbox.withSubject(subject)).toHaveLength(0);

    const ok = await call("POST", "/v1/tasks", {
      tasks: [
        { task: "send-email", ...email(`${subject} a`) },
        { task: "send-email", ...email(`${subject} b`), delay: 1 },
      ],
    });
    expect(ok.status).toBe(202);
    expect(ok.body.tasks).toHaveLength(2);
    for (const t of ok.body.tasks) expect((await settle(t.id)).state).toBe("succeeded");
  });
});

describe("listing", () => {
  it("lists newest first with a cursor, filtered by task and state", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++)
      ids.push((await call("POST", "/v1/tasks/send-email", { ...email(unique(`list ${i}`)), delay: "1h" })).body.id);
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await call("GET", `/v1/tasks?task=send-email&state=scheduled&limit=2${cursor ? `&cursor=${cursor}` : ""}`);
      expect(page.status).toBe(200);
      expect(page.body.tasks.length).toBeLessThanOrEqual(2);
      seen.push(...page.body.tasks.map((t: any) => t.id));
      cursor = page.body.cursor;
    } while (cursor && seen.length < 1000);
    const mine = seen.filter((id) => ids.includes(id));
    expect(mine).toEqual([...ids].reverse());
    expect(new Set(seen).size).toBe(seen.length);
    for (const id of ids) expect((await call("DELETE", `/v1/tasks/${id}`)).status).toBe(200);
  });
});
