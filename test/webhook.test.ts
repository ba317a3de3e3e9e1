// The webhook task end to end: enqueue through the Worker in workerd, delivery by the local broker,
// the request to a local receiver (on 127.0.0.1, which the test stack allow-lists), signatures
// checked with the official `standardwebhooks` package, and the recorded outcome.
import { randomUUID } from "node:crypto";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AppProcess, freePort, startApp } from "../dev/stack.ts";
import { newTaskId } from "../src/ids.ts";
import { call, postAsQstash, settle, stack } from "./helpers/api.ts";
import { startWebhookReceiver, type WebhookReceiver } from "./helpers/webhook-receiver.ts";

let rx: WebhookReceiver;
beforeAll(async () => {
  rx = await startWebhookReceiver(stack().env.CELERIAC_WEBHOOK_SECRET!);
});
afterAll(() => rx?.close());

const newPath = () => `/hooks/${randomUUID()}`;
const enqueue = (payload: Record<string, unknown>, options: Record<string, unknown> = {}) =>
  call("POST", "/v1/tasks/webhook", { payload, ...options });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const retryingErrors = (done: any) =>
  done.history
    .filter((h: any) => h.state === "retrying")
    .reverse()
    .map((h: any) => h.error);

describe("webhook delivery", () => {
  it("POSTs signed JSON once, with webhook-id = task id, and stores the answer", async () => {
    const path = newPath();
    const json = { order: 42, items: ["crème brûlée"], paid: true };
    const r = await enqueue({
      url: `${rx.base}${path}?order=42`,
      headers: { "X-Order": "42", Authorization: "Bearer t0k" },
      body: { json },
    });
    expect(r.status).toBe(202);
    expect(r.body.task).toBe("webhook");
    const done = await settle(r.body.id);
    expect(done.state).toBe("succeeded");
    expect(done.attempts).toBe(1);
    expect(done.result).toEqual({ status: 200, headers: { "content-type": "application/json" }, body: '{"ok":true}' });

    await sleep(300); // a duplicate would have arrived by now
    const got = rx.receipts(path);
    expect(got).toHaveLength(1);
    const [req] = got;
    expect(req!.method).toBe("POST");
    expect(req!.url).toBe(`${path}?order=42`);
    expect(req!.body).toBe(JSON.stringify(json));
    expect(req!.signature).toBe("valid");
    expect(req!.headers).toMatchObject({
      "webhook-id": r.body.id,
      "content-type": "application/json",
      "x-order": "42",
      authorization: "Bearer t0k",
      "user-agent": "celeriac-webhook/1",
    });
    expect(req!.headers["webhook-signature"]).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
    expect(Math.abs(Number(req!.headers["webhook-timestamp"]) - Date.now() / 1000)).toBeLessThan(60);
    // The signature is over this body with this secret: another secret or body does not verify.
    const other = new Webhook(`whsec_${Buffer.from("not the celeriac secret").toString("base64")}`);
    expect(() => other.verify(req!.body, req!.headers)).toThrow(/No matching signature/);
    const own = new Webhook(stack().env.CELERIAC_WEBHOOK_SECRET!);
    expect(() => own.verify(req!.body.replace("42", "43"), req!.headers)).toThrow(/No matching signature/);
    expect(own.verify(req!.body, req!.headers)).toEqual(json);
  });

  it("retries a 503, then a 429 after its Retry-After, then succeeds: 3 receipts, one webhook-id", async () => {
    const path = newPath();
    rx.script(path, [
      { status: 503, body: "down" },
      { status: 429, headers: { "retry-after": "1" }, body: "slow down" },
      { status: 201, headers: { "content-type": "text/plain" }, body: "created" },
    ]);
    const r = await enqueue({ url: `${rx.base}${path}`, body: { json: { n: 1 } } });
    const done = await settle(r.body.id);
    expect(done.state).toBe("succeeded");
    expect(done.attempts).toBe(3);
    expect(done.result).toEqual({ status: 201, headers: { "content-type": "text/plain" }, body: "created" });
    const errors = retryingErrors(done);
    expect(errors.map((e: any) => [e.code, e.retryable])).toEqual([
      ["http_503", true],
      ["http_429", true],
    ]);
    expect(errors[0].message).toContain("answered 503");
    expect(errors[1].message).toContain("answered 429");

    const got = rx.receipts(path);
    expect(got).toHaveLength(3);
    expect(got.map((g) => g.headers["webhook-id"])).toEqual([r.body.id, r.body.id, r.body.id]);
    expect(got.map((g) => g.signature)).toEqual(["valid", "valid", "valid"]);
    // At time scale 0.05 QStash's first backoff (12 s) takes ~0.6 s; its second (~148 s) would
    // take ~7.4 s, but the 429's Retry-After: 1 makes it ~0.05 s.
    expect(got[1]!.at - got[0]!.at).toBeGreaterThan(300);
    expect(got[2]!.at - got[1]!.at).toBeLessThan(3_000);
  });

  it("fails a 400 at once: one attempt, not retryable", async () => {
    const path = newPath();
    rx.script(path, [{ status: 400, body: `{"error":"missing To"}${" pad".repeat(200)}` }]);
    const r = await enqueue({ url: `${rx.base}${path}?token=s3cret`, method: "PATCH", body: { json: [] } });
    const done = await settle(r.body.id);
    expect(done.state).toBe("failed");
    expect(done.attempts).toBe(1);
    expect(done.error).toMatchObject({ code: "http_400", retryable: false });
    expect(done.error.message).toContain("PATCH");
    expect(done.error.message).toContain(`${rx.base}${path} answered 400: {"error":"missing To"}`);
    // Kept: the status, the start of the answer, origin and path, never the query (it may hold a token).
    expect(done.error.details).toEqual({
      status: 400,
      url: `${rx.base}${path}`,
      body: `{"error":"missing To"}${" pad".repeat(200)}`.slice(0, 300),
    });
    expect(JSON.stringify(done.error)).not.toContain("s3cret");
    await sleep(1_000); // past the first backoff: no second attempt
    expect(rx.receipts(path)).toHaveLength(1);
  });

  it("does not follow a redirect: a permanent failure naming the Location", async () => {
    const path = newPath();
    rx.script(path, [{ status: 302, headers: { location: `${rx.base}${path}/next` } }]);
    const r = await enqueue({ url: `${rx.base}${path}` });
    const done = await settle(r.body.id);
    expect(done.state).toBe("failed");
    expect(done.attempts).toBe(1);
    expect(done.error).toMatchObject({ code: "http_redirect", retryable: false });
    expect(done.error.message).toContain(`redirect to ${rx.base}${path}/next`);
    await sleep(300);
    expect(rx.receipts(path)).toHaveLength(1);
    expect(rx.receipts(`${path}/next`)).toHaveLength(0);
  });

  it("sends a text body with PUT, and a GET with none; keeps only the start of a long answer", async () => {
    const put = newPath();
    const text = "status: ok ✓\nline 2";
    const a = await enqueue({ url: `${rx.base}${put}`, method: "PUT", body: { text } });
    expect((await settle(a.body.id)).state).toBe("succeeded");
    const [p] = rx.receipts(put);
    expect([p!.method, p!.body, p!.headers["content-type"], p!.signature]).toEqual(["PUT", text, "text/plain; charset=utf-8", "valid"]);

    const get = newPath();
    rx.script(get, [{ status: 200, headers: { "content-type": "text/plain" }, body: "x".repeat(5_000) }]);
    const b = await enqueue({ url: `${rx.base}${get}?q=1`, method: "GET", headers: { accept: "text/plain" } });
    const done = await settle(b.body.id);
    expect(done.state).toBe("succeeded");
    expect(done.result).toEqual({ status: 200, headers: { "content-type": "text/plain" }, body: "x".repeat(2_000), truncated: true });
    const [g] = rx.receipts(get);
    expect([g!.method, g!.body, g!.headers["content-type"], g!.headers.accept, g!.signature]).toEqual([
      "GET",
      "",
      undefined,
      "text/plain",
      "valid",
    ]);
    expect(g!.headers["webhook-id"]).toBe(b.body.id);
  });

  it("retries a connection error and records it as retryable when attempts run out", async () => {
    const port = await freePort(); // bound, then released: nobody listens there
    const r = await enqueue({ url: `http://127.0.0.1:${port}/nobody` }, { retries: 1 });
    const done = await settle(r.body.id);
    expect(done.state).toBe("failed");
    expect(done.attempts).toBe(2);
    expect(done.error).toMatchObject({ code: "error", retryable: true });
    expect(done.error.message).toContain(`webhook POST http://127.0.0.1:${port} failed`);
  });

  it("aborts an attempt at the task's timeout and records code timeout", async () => {
    const path = newPath();
    rx.script(path, [{ status: 200, delayMs: 3_000 }]);
    const r = await enqueue({ url: `${rx.base}${path}` }, { timeout: 1, retries: 0 });
    const done = await settle(r.body.id);
    expect(done.state).toBe("failed");
    expect(done.attempts).toBe(1);
    expect(done.error).toMatchObject({ code: "timeout", retryable: true });
  });
});

describe("the SSRF guard at enqueue time", () => {
  it("refuses private, loopback and metadata targets with a 422 naming the reason", async () => {
    const port = new URL(rx.base).port;
    const cases: [string, string][] = [
      [`http://localhost:${port}/x`, "refused: localhost is a loopback address; add it to CELERIAC_WEBHOOK_ALLOW_HOSTS to allow it"],
      // Only 127.0.0.1 is allow-listed in the test stack, not the rest of 127/8.
      [`http://127.0.0.2:${port}/x`, "refused: 127.0.0.2 is a loopback address; add it to CELERIAC_WEBHOOK_ALLOW_HOSTS to allow it"],
      [`http://0x7f.0.0.2:${port}/x`, "refused: 127.0.0.2 is a loopback address; add it to CELERIAC_WEBHOOK_ALLOW_HOSTS to allow it"],
      [`http://[::1]:${port}/x`, "refused: [::1] is a loopback address; add it to CELERIAC_WEBHOOK_ALLOW_HOSTS to allow it"],
      ["http://10.0.0.5/hook", "refused: 10.0.0.5 is a private network address; add it to CELERIAC_WEBHOOK_ALLOW_HOSTS to allow it"],
      [
        "http://169.254.169.254/latest/meta-data/",
        "refused: 169.254.169.254 is a cloud metadata endpoint; add it to CELERIAC_WEBHOOK_ALLOW_HOSTS to allow it",
      ],
      [
        "http://metadata.google.internal/computeMetadata/v1/",
        "refused: metadata.google.internal is a cloud metadata endpoint; add it to CELERIAC_WEBHOOK_ALLOW_HOSTS to allow it",
      ],
      [
        "http://[::ffff:192.168.0.1]/",
        "refused: [::ffff:c0a8:1] is a private network address (IPv4 192.168.0.1 inside IPv6); add it to CELERIAC_WEBHOOK_ALLOW_HOSTS to allow it",
      ],
    ];
    for (const [url, message] of cases) {
      const r = await enqueue({ url });
      expect([url, r.status, r.body.error.code]).toEqual([url, 422, "invalid_payload"]);
      expect(r.body.error.issues).toEqual([{ path: "payload.url", message }]);
    }
    // The same receiver on the allow-listed host is accepted.
    const ok = await enqueue({ url: `http://127.0.0.1:${port}${newPath()}` });
    expect(ok.status).toBe(202);
    expect((await settle(ok.body.id)).state).toBe("succeeded");
  });

  it("refuses malformed requests with a 422 per field", async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ url: "ftp://example.com/f" }, "payload.url"],
      [{ url: "http://user:pw@example.com/" }, "payload.url"],
      [{ url: `https://example.com/${"a".repeat(2_100)}` }, "payload.url"],
      [{ url: "https://example.com/", method: "HEAD" }, "payload.method"],
      [{ url: "https://example.com/", method: "GET", body: { json: {} } }, "payload.body"],
      [{ url: "https://example.com/", method: "DELETE", body: { text: "x" } }, "payload.body"],
      [{ url: "https://example.com/", body: { json: 1, text: "1" } }, "payload.body"],
      [{ url: "https://example.com/", headers: { Host: "evil.example" } }, "payload.headers.Host"],
      [{ url: "https://example.com/", headers: { "Webhook-Signature": "v1,forged" } }, "payload.headers.Webhook-Signature"],
      [{ url: "https://example.com/", headers: { "transfer-encoding": "chunked" } }, "payload.headers.transfer-encoding"],
      [{ url: "https://example.com/", headers: { "x-a": "1\r\nx-b: 2" } }, "payload.headers.x-a"],
      [{ url: "https://example.com/", timeout: 5 }, "payload.timeout"],
    ];
    for (const [payload, path] of cases) {
      const r = await enqueue(payload);
      expect([payload, r.status, r.body.error.issues.map((i: any) => i.path)]).toEqual([payload, 422, [path]]);
    }
  });

  it("re-checks at run time: a delivery whose target is no longer allowed fails for good", async () => {
    // As if the allow-list shrank after enqueue: a signed delivery straight to the Worker.
    const id = newTaskId();
    const url = `${stack().env.CELERIAC_PUBLIC_URL}/qstash/deliver`;
    const body = JSON.stringify({
      v: 1,
      id,
      task: "webhook",
      payload: { url: "http://10.0.0.5/hook", method: "POST" },
      options: { retries: 3, timeout: 10, resultTtl: 60 },
      createdAt: Date.now(),
      runAt: Date.now(),
    });
    const res = await postAsQstash(url, body);
    expect(res.status).toBe(489);
    expect(res.headers.get("upstash-nonretryable-error")).toBe("true");
    const done = (await call("GET", `/v1/tasks/${id}`)).body;
    expect(done.state).toBe("failed");
    expect(done.error.retryable).toBe(false);
    expect(done.error.message).toContain("refused: 10.0.0.5 is a private network address");
  });
});

describe("without CELERIAC_WEBHOOK_SECRET", () => {
  let app: AppProcess | undefined;
  afterAll(() => app?.close());

  it("sends the request unsigned, still with webhook-id", async () => {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    app = await startApp("workerd", port, { ...stack().env, CELERIAC_PUBLIC_URL: base, CELERIAC_WEBHOOK_SECRET: "" });
    const path = newPath();
    const r = await call("POST", "/v1/tasks/webhook", { payload: { url: `${rx.base}${path}`, body: { text: "hi" } } }, { base });
    expect(r.status).toBe(202);
    expect((await settle(r.body.id, undefined, base)).state).toBe("succeeded");
    const [req] = rx.receipts(path);
    expect(req!.signature).toBe("unsigned");
    expect(req!.headers["webhook-signature"]).toBeUndefined();
    expect(req!.headers["webhook-id"]).toBe(r.body.id);
    expect(req!.headers["webhook-timestamp"]).toMatch(/^\d{10}$/);
  }, 120_000);
});
