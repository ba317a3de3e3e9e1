// The verification-code flow over HTTP against the Worker in workerd: request (202, a receipt, one
// mail), the cooldown, check (wrong → 422 with tries left, right → a token once, reused → 409,
// five wrong → 429, none sent → 410), the API-key check for backends, and bad input.
import { jwtVerify } from "jose";
import { describe, expect, it } from "vitest";
import { codeFor } from "../src/one-time-codes.ts";
import { call, mailbox, stack, until } from "./helpers/api.ts";

const tag = Math.random().toString(36).slice(2, 8);
let n = 0;
/** A browser on the demo page's origin, from an address of its own (wrangler dev passes CF-Connecting-IP through). */
async function browser(path: string, body: unknown, ip = `198.51.100.${(n++ % 200) + 20}`) {
  const r = await fetch(stack().worker + path, {
    method: "POST",
    headers: { origin: stack().site, "content-type": "application/json", "cf-connecting-ip": ip },
    body: JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, headers: r.headers, body: text ? JSON.parse(text) : undefined };
}
const address = (label: string) => `${label}-${tag}@celeriac.dev`;
const codeIn = (to: string) =>
  until(`a code mailed to ${to}`, async () => {
    const [mail] = await mailbox.to(to);
    return mail ? /^(\d{6}) is your /.exec(mail.subject)?.[1] : undefined;
  });
const wrong = (code: string) => String((Number(code) + 1) % 1_000_000).padStart(6, "0");
const secret = () => new TextEncoder().encode(stack().env.VERIFICATION_TOKEN_SECRET!);

describe("requesting a code", () => {
  it("answers 202 with a receipt at once; one mail, with text and HTML; a resend in the cooldown mails nothing new", async () => {
    const email = address("request");
    const first = await browser("/v1/public/verification", { email, purpose: "sign-in" });
    expect(first.status).toBe(202);
    expect(first.headers.get("access-control-allow-origin")).toBe(stack().site);
    expect(Object.keys(first.body).sort()).toEqual(["receipt", "state"]);
    const code = await codeIn(email);
    // The receipt shows the task id; the code is keyed with celeriac's own secret, so the token
    // secret that backends hold does not yield it.
    const taskId = first.body.receipt.split(".")[0];
    expect(await codeFor(stack().env.VERIFICATION_CODE_SECRET!, taskId)).toBe(code);
    expect(await codeFor(stack().env.VERIFICATION_TOKEN_SECRET!, taskId)).not.toBe(code);
    const [mail] = await mailbox.to(email);
    expect(mail.text).toContain(code);
    expect(mail.html).toContain(code);
    const again = await browser("/v1/public/verification", { email, purpose: "sign-in" });
    expect(again.status).toBe(202); // the same answer: a caller cannot tell a cooldown from a send
    await until("the resend to finish", async () => {
      const r = await fetch(`${stack().worker}/v1/public/receipts/${again.body.receipt}`, { headers: { origin: stack().site } });
      return (await r.json()).state === "succeeded" ? true : undefined;
    });
    expect(await mailbox.to(email)).toHaveLength(1);
  });

  it("refuses bad input with its own 4xx and enqueues nothing", async () => {
    const email = address("bad");
    expect((await browser("/v1/public/verification", { email: "nope", purpose: "sign-in" })).body.error.code).toBe("invalid_payload");
    expect((await browser("/v1/public/verification", { email, purpose: "Sign In!" })).body.error.code).toBe("invalid_payload");
    expect((await browser("/v1/public/verification", { email, purpose: "sign-in", subject: "Win a prize" })).status).toBe(422);
    const listed = await call("GET", "/v1/tasks?task=verification&limit=100");
    expect(listed.body.tasks.filter((t: { payload?: { email?: string } }) => t.payload?.email?.includes(`bad-${tag}`))).toEqual([]);
  });
});

describe("checking a code", () => {
  async function requested(label: string) {
    const email = address(label);
    expect((await browser("/v1/public/verification", { email, purpose: "sign-in" })).status).toBe(202);
    return { email, code: await codeIn(email) };
  }

  it("a wrong code is a 422 with the tries left; the right one a token, once; then 409", async () => {
    const { email, code } = await requested("check");
    const miss = await browser("/v1/public/verification/check", { email, purpose: "sign-in", code: wrong(code) });
    expect(miss.status).toBe(422);
    expect(miss.body).toMatchObject({ error: { code: "wrong_code" }, triesLeft: 4 });
    const ok = await browser("/v1/public/verification/check", { email, purpose: "sign-in", code });
    expect(ok.status).toBe(200);
    expect(ok.body.verified).toBe(true);
    const { payload } = await jwtVerify(ok.body.token, secret(), { algorithms: ["HS256"] });
    expect(payload).toMatchObject({ sub: email, purpose: "sign-in" });
    const reused = await browser("/v1/public/verification/check", { email, purpose: "sign-in", code });
    expect(reused.status).toBe(409);
    expect(reused.body.error.code).toBe("code_used");
  });

  it("five wrong tries kill the code: 429, even for the right one", async () => {
    const { email, code } = await requested("guess");
    const statuses = [];
    for (let i = 0; i < 5; i++)
      statuses.push((await browser("/v1/public/verification/check", { email, purpose: "sign-in", code: wrong(code) })).status);
    expect(statuses).toEqual([422, 422, 422, 422, 429]);
    const late = await browser("/v1/public/verification/check", { email, purpose: "sign-in", code });
    expect(late.status).toBe(429);
    expect(late.body.error.code).toBe("too_many_attempts");
  });

  it("no code sent (or expired): 410", async () => {
    const r = await browser("/v1/public/verification/check", { email: address("never"), purpose: "sign-in", code: "123456" });
    expect(r.status).toBe(410);
    expect(r.body.error.code).toBe("code_expired");
  });

  it("bad input: a malformed code, an unknown field, a disallowed origin", async () => {
    const email = address("input");
    expect((await browser("/v1/public/verification/check", { email, purpose: "sign-in", code: "12ab56" })).body.error).toMatchObject({
      code: "invalid_check",
      issues: [{ path: "code" }],
    });
    expect((await browser("/v1/public/verification/check", { email, purpose: "sign-in", code: "123456", admin: true })).status).toBe(400);
    const r = await fetch(`${stack().worker}/v1/public/verification/check`, {
      method: "POST",
      headers: { origin: "https://evil.example", "content-type": "application/json" },
      body: JSON.stringify({ email, purpose: "sign-in", code: "123456" }),
    });
    expect(r.status).toBe(403);
    expect(r.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("a backend may check with its API key instead (and only with one)", async () => {
    const { email, code } = await requested("backend");
    const denied = await fetch(`${stack().worker}/v1/verification/check`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email, purpose: "sign-in", code }),
    });
    expect(denied.status).toBe(401);
    const ok = await call("POST", "/v1/verification/check", { email, purpose: "sign-in", code });
    expect(ok.status).toBe(200);
    expect((await jwtVerify(ok.body.token, secret())).payload.sub).toBe(email);
  });
});
