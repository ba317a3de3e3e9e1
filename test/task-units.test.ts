// Each built-in task's run() with fakeContext(): no stack, no network; what the task asks of
// ctx (mail, fetch, kv, enqueue) is recorded and checked.
import { Webhook } from "standardwebhooks";
import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { buildReport } from "../src/stats.ts";
import { type AnyTask, PermanentError, RateLimited, RetryLater } from "../src/task.ts";
import dailyStats from "../tasks/daily-stats.ts";
import sendEmail from "../tasks/send-email.ts";
import verification from "../tasks/verification.ts";
import webhook from "../tasks/webhook.ts";
import { fakeContext } from "./helpers/fake-context.ts";
import sendSms from "./tasks/send-sms.ts";

/** Runs a task as the runner does: its env and payload parsed by its own schemas first. */
const run = <T extends AnyTask>(
  task: T,
  payload: unknown,
  ctx: ReturnType<typeof fakeContext<any>>,
  rawEnv: Record<string, string> = {},
) => {
  ctx.env = task.env ? v.parse(task.env, rawEnv) : {};
  return task.run(v.parse(task.input, payload), ctx);
};

describe("send-email", () => {
  it("sends from the task's default sender unless the payload names one", async () => {
    const ctx = fakeContext();
    expect(await run(sendEmail, { to: "ada@celeriac.dev", subject: "Hi", text: "x", replyTo: "b@celeriac.dev" }, ctx)).toEqual({
      emailId: "email-1",
    });
    expect(ctx.sent[0]).toMatchObject({ from: "celeriac <tasks@celeriac.dev>", to: "ada@celeriac.dev", replyTo: "b@celeriac.dev" });
    await run(sendEmail, { to: "ada@celeriac.dev", subject: "Hi", text: "x" }, ctx, { CELERIAC_MAIL_FROM: "Shop <shop@celeriac.dev>" });
    expect(ctx.sent[1]!.from).toBe("Shop <shop@celeriac.dev>");
    await run(sendEmail, { from: "me@celeriac.dev", to: "ada@celeriac.dev", subject: "Hi", text: "x" }, ctx, {
      CELERIAC_MAIL_FROM: "Shop <shop@celeriac.dev>",
    });
    expect(ctx.sent[2]!.from).toBe("me@celeriac.dev");
  });
});

describe("webhook", () => {
  const secret = "whsec_Y2VsZXJpYWMtZGV2LXdlYmhvb2stc2VjcmV0";
  const payload = { url: "https://hooks.example.com/x", body: { json: { a: 1 } } };

  it("signs with the task's secret (webhook-id = task id) and returns the answer", async () => {
    const ctx = fakeContext({ fetch: () => new Response("thanks", { status: 200, headers: { "content-type": "text/plain" } }) });
    const result = await run(webhook, payload, ctx, { CELERIAC_WEBHOOK_SECRET: secret });
    expect(result).toEqual({ status: 200, headers: { "content-type": "text/plain" }, body: "thanks" });
    const req = ctx.fetched[0]!;
    expect(req.headers.get("webhook-id")).toBe(ctx.id);
    const headers = Object.fromEntries(req.headers);
    expect(new Webhook(secret).verify(await req.text(), headers)).toEqual({ a: 1 });
  });

  it("goes out unsigned without a secret", async () => {
    const ctx = fakeContext({ fetch: () => new Response(null, { status: 204 }) });
    await run(webhook, payload, ctx);
    expect(ctx.fetched[0]!.headers.get("webhook-signature")).toBeNull();
    expect(ctx.fetched[0]!.headers.get("webhook-id")).toBe(ctx.id);
  });

  it("maps answers: Retry-After → RetryLater, 5xx → retry, 3xx and 4xx → permanent", async () => {
    const answer = (status: number, headers: Record<string, string> = {}): Promise<any> =>
      run(webhook, payload, fakeContext({ fetch: () => new Response(null, { status, headers }) })).catch((e: any) => e);
    const later = await answer(503, { "retry-after": "7" });
    expect(later).toBeInstanceOf(RetryLater);
    expect(later.afterSeconds).toBe(7);
    const retry = await answer(500);
    expect(retry).not.toBeInstanceOf(PermanentError);
    expect(retry.code).toBe("http_500");
    expect(await answer(302, { location: "https://elsewhere.example" })).toMatchObject({ name: "PermanentError", code: "http_redirect" });
    expect(await answer(404)).toMatchObject({ name: "PermanentError", code: "http_404" });
    // A 429 is "later": RateLimited, which waits without spending an attempt.
    const limited = await answer(429, { "retry-after": "3" });
    expect(limited).toBeInstanceOf(RateLimited);
    expect(limited).toMatchObject({ code: "http_429", afterSeconds: 3 });
    expect(await answer(429)).toMatchObject({ name: "RateLimited", afterSeconds: 1 });
  });

  it("refuses private targets unless the task's allow-list names them", () => {
    const local = v.parse(webhook.input, { url: "http://127.0.0.1:9/x" });
    expect(webhook.check!(local, v.parse(webhook.env!, {}))).toEqual([{ path: "url", message: expect.stringMatching(/loopback/) }]);
    expect(webhook.check!(local, v.parse(webhook.env!, { CELERIAC_WEBHOOK_ALLOW_HOSTS: "127.0.0.1" }))).toBeUndefined();
  });
});

describe("daily-stats", () => {
  const counters = { "send-email:enqueued": "3", "send-email:succeeded": "3" };
  it("stores the day's report in its kv and mails it once per day and address", async () => {
    const ctx = fakeContext({ day: (date) => buildReport(date, counters) });
    const result = await run(dailyStats, { date: "2026-11-25" }, ctx, { CELERIAC_STATS_EMAIL: "ops@celeriac.dev" });
    expect(result).toMatchObject({ date: "2026-11-25", totals: { enqueued: 3, succeeded: 3 }, emailTask: "tsk_follow_up_1" });
    expect(ctx.kvEntries.get("report:2026-11-25")).toMatchObject({
      value: { date: "2026-11-25", totals: { enqueued: 3 } },
      ttl: 400 * 86_400,
    });
    expect(ctx.enqueued).toEqual([
      {
        task: "send-email",
        payload: { to: "ops@celeriac.dev", subject: "celeriac: statistics for 2026-11-25", text: expect.stringContaining("send-email") },
        options: { idempotencyKey: "daily-stats:2026-11-25:ops@celeriac.dev" },
      },
    ]);
  });

  it("reports yesterday by default and mails nothing without an address", async () => {
    const ctx = fakeContext();
    const result = (await run(dailyStats, {}, ctx)) as { date: string };
    expect(result.date).toBe(new Date(Date.now() - 86_400_000).toISOString().slice(0, 10));
    expect(ctx.enqueued).toEqual([]);
  });
});

describe("verification", () => {
  const env = {
    VERIFICATION_TOKEN_SECRET: "a-secret-of-at-least-32-characters!!",
    VERIFICATION_CODE_SECRET: "another-secret-of-at-least-32-characters",
    VERIFICATION_PRODUCT_NAME: "Shop & Co",
  };
  it("mails the code, text and HTML, from the task's sender, naming the product", async () => {
    const ctx = fakeContext({ code: "042917" });
    expect(await run(verification, { email: " Ada@celeriac.dev ", purpose: "sign-in" }, ctx, env)).toEqual({
      sent: true,
      emailId: "email-1",
    });
    expect(ctx.sent[0]).toMatchObject({
      from: "celeriac <verify@celeriac.dev>",
      to: "Ada@celeriac.dev",
      subject: "042917 is your Shop & Co code",
    });
    expect(ctx.sent[0]!.text).toContain("Your Shop & Co code is 042917.");
    expect(ctx.sent[0]!.html).toContain("Shop &#38; Co");
    expect(ctx.sent[0]!.html).toContain(">042917<");
  });
  it("within the cooldown sends nothing", async () => {
    const ctx = fakeContext({ code: null });
    expect(await run(verification, { email: "ada@celeriac.dev", purpose: "sign-in" }, ctx, env)).toEqual({ sent: false });
    expect(ctx.sent).toEqual([]);
  });
  it("refuses to start without its token secret or its code secret", () => {
    expect(() => run(verification, { email: "ada@celeriac.dev", purpose: "sign-in" }, fakeContext(), {})).toThrow(
      /VERIFICATION_TOKEN_SECRET/,
    );
    expect(() =>
      run(verification, { email: "ada@celeriac.dev", purpose: "sign-in" }, fakeContext(), {
        VERIFICATION_TOKEN_SECRET: env.VERIFICATION_TOKEN_SECRET,
      }),
    ).toThrow(/VERIFICATION_CODE_SECRET/);
  });
});

describe("a test task with its own env (send-sms)", () => {
  it("reads its variables through ctx.env", async () => {
    const ctx = fakeContext({ fetch: () => Response.json({ id: "sms-1" }) });
    expect(
      await run(sendSms, { to: "+15550100", text: "hi" }, ctx, { SMS_TOKEN: "sms-secret-1", SMS_API_URL: "https://sms.example/send" }),
    ).toEqual({ sms: "sms-1" });
    expect(ctx.fetched[0]!.url).toBe("https://sms.example/send");
    expect(ctx.fetched[0]!.headers.get("authorization")).toBe("Bearer sms-secret-1");
  });
});
