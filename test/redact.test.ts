// Item 6 of issue 15: secrets in payloads never land in the task record. The webhook task keeps
// its header values out by default, a caller may add paths per enqueue, and `resultTtl` can be
// set per enqueue. Through the Worker in workerd, reading the raw Redis record too.
import { Redis } from "@upstash/redis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REDACTED, redact } from "../src/redact.ts";
import { call, keyPrefix, mailbox, settle, stack, unique } from "./helpers/api.ts";
import { startWebhookReceiver, type WebhookReceiver } from "./helpers/webhook-receiver.ts";

const redis = () =>
  new Redis({ url: stack().env.UPSTASH_REDIS_REST_URL, token: stack().env.UPSTASH_REDIS_REST_TOKEN, automaticDeserialization: false });
/** Everything Redis holds about a task: its hash and its history, as one string. */
const raw = async (id: string) =>
  JSON.stringify([await redis().hgetall(`${keyPrefix()}t:${id}`), await redis().lrange(`${keyPrefix()}t:${id}:h`, 0, -1)]);

let rx: WebhookReceiver;
beforeAll(async () => {
  rx = await startWebhookReceiver(stack().env.CELERIAC_WEBHOOK_SECRET!);
});
afterAll(() => rx?.close());

describe("redact", () => {
  it("replaces the values at each path, * for every key, and names what it replaced", () => {
    const p = {
      headers: { authorization: "Bearer t", "x-key": "k" },
      body: { json: { code: "123456", n: 1 } },
      list: [{ s: "a" }, { s: "b" }],
    };
    const r = redact(p, ["headers.*", "body.json.code", "list.*.s", "absent.path"]);
    expect(r.value).toEqual({
      headers: { authorization: REDACTED, "x-key": REDACTED },
      body: { json: { code: REDACTED, n: 1 } },
      list: [{ s: REDACTED }, { s: REDACTED }],
    });
    expect(r.redacted).toEqual(["body.json.code", "headers.authorization", "headers.x-key", "list.0.s", "list.1.s"]);
    expect(p.headers.authorization).toBe("Bearer t"); // the input is left as it was
  });

  it("a webhook's header values reach the receiver but never the record, the API or the list", async () => {
    const path = `/secret/${crypto.randomUUID()}`;
    const secret = `s3cret-${crypto.randomUUID()}`;
    const r = await call("POST", "/v1/tasks/webhook", {
      payload: { url: `${rx.base}${path}`, headers: { Authorization: `Bearer ${secret}`, "X-Api-Key": secret } },
    });
    expect(r.status).toBe(202);
    const done = await settle(r.body.id);
    expect(done.state).toBe("succeeded");
    expect(rx.receipts(path)[0]!.headers.authorization).toBe(`Bearer ${secret}`);
    expect(done.payload.headers).toEqual({ Authorization: REDACTED, "X-Api-Key": REDACTED });
    expect(done.redacted).toEqual(["headers.Authorization", "headers.X-Api-Key"]);
    expect(JSON.stringify(done)).not.toContain(secret);
    expect(JSON.stringify((await call("GET", "/v1/tasks?task=webhook&limit=100")).body)).not.toContain(secret);
    expect(await raw(r.body.id)).not.toContain(secret);
  });

  it("a caller redacts more per enqueue (a sign-in code in an email) and sets how long the result is kept", async () => {
    const code = String(100000 + Math.floor(Math.random() * 899999));
    const subject = unique("your code");
    const r = await call("POST", "/v1/tasks/send-email", {
      payload: { to: "ada@celeriac.dev", subject, text: `Your code is ${code}` },
      redact: ["text"],
      resultTtl: "2m",
    });
    const done = await settle(r.body.id);
    expect(done).toMatchObject({
      state: "succeeded",
      payload: { subject, text: REDACTED },
      redacted: ["text"],
      options: { resultTtl: 120 },
    });
    // Sent on its own, not in a batch: a batch reads payloads from the records, which hold it redacted.
    expect((await mailbox.withSubject(subject))[0]).toMatchObject({ text: `Your code is ${code}`, endpoint: "/emails" });
    expect(await raw(r.body.id)).not.toContain(code);
    const ttl = await redis().ttl(`${keyPrefix()}t:${r.body.id}`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(120);
  });

  it("an idempotent repeat is recognised by the whole payload, though the record keeps it redacted", async () => {
    const key = unique("redacted-repeat").replace(" ", "-");
    const payload = (token: string) => ({ url: `${rx.base}/repeat`, headers: { authorization: token } });
    const first = await call(
      "POST",
      "/v1/tasks/webhook",
      { payload: payload("Bearer a"), delay: "1h" },
      { headers: { "idempotency-key": key } },
    );
    expect(first.status).toBe(202);
    const again = await call(
      "POST",
      "/v1/tasks/webhook",
      { payload: payload("Bearer a"), delay: "1h" },
      { headers: { "idempotency-key": key } },
    );
    expect(again).toMatchObject({ status: 200, body: { id: first.body.id, duplicate: true } });
    const other = await call(
      "POST",
      "/v1/tasks/webhook",
      { payload: payload("Bearer b"), delay: "1h" },
      { headers: { "idempotency-key": key } },
    );
    expect(other.status).toBe(409);
    expect(other.body.error.code).toBe("idempotency_key_reused");
    // A redacted task cannot be retried from its record: it says so instead of sending "[redacted]".
    expect((await call("DELETE", `/v1/tasks/${first.body.id}`)).body.state).toBe("cancelled");
    const retry = await call("POST", `/v1/tasks/${first.body.id}/retry`);
    expect(retry.status).toBe(409);
    expect(retry.body.error.code).toBe("payload_redacted");
  });

  it("refuses a bad redact path or resultTtl with a 400 naming the field", async () => {
    const bad = await call("POST", "/v1/tasks/send-email", {
      payload: { to: "ada@celeriac.dev", subject: "s", text: "t" },
      redact: ["text..x"],
      resultTtl: 5,
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.issues.map((i: any) => i.path).sort()).toEqual(["redact.0", "resultTtl"]);
  });
});
