// Route tests in-process (`app.request`), with a QStash client injected through
// createApp({ services }) that records what celeriac asks of QStash and passes it on to the
// stack's broker; plus the retry policy seen end to end through the Worker in workerd.
import { Client } from "@upstash/qstash";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEV_API_KEY } from "../dev/stack.ts";
import { createApp } from "../src/app.ts";
import { call, settle, stack, unique, until } from "./helpers/api.ts";
import { startWebhookReceiver, type WebhookReceiver } from "./helpers/webhook-receiver.ts";

/** The real client, recording each publish request before sending it. */
class RecordingClient extends Client {
  published: Record<string, unknown>[] = [];
  override publishJSON: Client["publishJSON"] = (req) => (this.published.push(req as Record<string, unknown>), super.publishJSON(req));
}

const qstash = new RecordingClient({ baseUrl: stack().broker, token: stack().env.QSTASH_TOKEN!, retry: false });
const app = createApp({ services: { qstash } });
const post = (path: string, body: unknown) =>
  app.request(
    path,
    { method: "POST", headers: { authorization: `Bearer ${DEV_API_KEY}`, "content-type": "application/json" }, body: JSON.stringify(body) },
    { ...stack().env },
  );
const email = (subject: string) => ({ to: "ada@celeriac.dev", subject, text: "x" });

describe("routes in-process, with injected services", () => {
  it("mounts the API key check once for every /v1 route", async () => {
    for (const path of ["/v1/tasks/send-email", "/v1/tasks", "/v1/schedules/sync"]) {
      const r = await app.request(path, { method: "POST" }, { ...stack().env });
      expect(r.status).toBe(401);
    }
    expect((await app.request("/v1/stats", {}, { ...stack().env })).status).toBe(401);
    expect((await app.request("/qstash/deliver", { method: "POST", body: "{}" }, { ...stack().env })).status).toBe(401);
  });

  it("sends the task's retry policy to QStash: the task's own, or the one given per enqueue", async () => {
    const plain = await post("/v1/tasks/send-email", { payload: email(unique("policy")), delay: "1h" });
    expect(plain.status).toBe(202);
    const own = await post("/v1/tasks/send-email", {
      payload: email(unique("policy")),
      delay: "1h",
      retryDelay: { base: 2, factor: 3, max: 60 },
    });
    const expr = await post("/v1/tasks/send-email", { payload: email(unique("policy")), delay: "1h", retryDelay: "1000 * (retried + 1)" });
    expect(qstash.published.map((p) => p.retryDelay)).toEqual([
      "min(300000, 5000 * pow(2, retried))", // send-email's stated policy
      "min(60000, 2000 * pow(3, retried))",
      "1000 * (retried + 1)",
    ]);
    // QStash (the broker) holds it, and the record shows it among the options.
    const [first, body, third] = (await Promise.all([plain.json(), own.json(), expr.json()])) as any[];
    expect((await qstash.messages.get(body.messageId)).retryDelayExpression).toBe("min(60000, 2000 * pow(3, retried))");
    expect((await call("GET", `/v1/tasks/${body.id}`)).body.options).toMatchObject({
      retries: 8,
      retryDelay: "min(60000, 2000 * pow(3, retried))",
    });
    for (const t of [first, body, third]) expect((await call("DELETE", `/v1/tasks/${t.id}`)).status).toBe(200);
  });

  it("refuses a bad retryDelay with a 400 naming the field, enqueueing nothing", async () => {
    const before = qstash.published.length;
    for (const retryDelay of [{ base: -1 }, { base: 10, max: 5 }, { base: 1, every: 2 }, { base: 1e17, max: 1e17 }, "rm -rf /;", 42]) {
      const r = await post("/v1/tasks/send-email", { payload: email("never"), retryDelay });
      expect(r.status).toBe(400);
      const error = ((await r.json()) as any).error;
      expect(error).toMatchObject({ code: "invalid_options", issues: [{ path: "retryDelay" }] });
    }
    expect(qstash.published.length).toBe(before);
  });
});

describe("retry policy end to end (Worker in workerd)", () => {
  let rx: WebhookReceiver;
  beforeAll(async () => {
    rx = await startWebhookReceiver(stack().env.CELERIAC_WEBHOOK_SECRET!);
  });
  afterAll(() => rx?.close());

  it("waits the task's retryDelay between attempts and shows nextAttemptAt while retrying", async () => {
    const path = `/flaky-${unique("p").replace(" ", "-")}`;
    rx.script(path, [{ status: 500 }]);
    // 40 s before the first retry; the broker's clock runs 20× faster, so about 2 s here.
    const r = await call("POST", "/v1/tasks/webhook", {
      payload: { url: `${rx.base}${path}` },
      retryDelay: { base: 40, factor: 2, max: 600 },
    });
    expect(r.status).toBe(202);
    const retrying = await until("the task to be retrying", async () => {
      const t = (await call("GET", `/v1/tasks/${r.body.id}`)).body;
      return t.state === "retrying" ? t : undefined;
    });
    const failedAt = Date.parse(retrying.history.at(-1).at);
    expect(Date.parse(retrying.nextAttemptAt) - failedAt).toBeGreaterThanOrEqual(40_000);
    expect(Date.parse(retrying.nextAttemptAt) - failedAt).toBeLessThan(41_000);
    const done = await settle(r.body.id, ["succeeded"]);
    expect(done.nextAttemptAt).toBeUndefined();
    const [first, second] = rx.receipts(path);
    // The broker waited the 40 s, scaled by its time scale.
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(40_000 * stack().timeScale * 0.9);
  });

  it("records no due time for a Retry-After no date can hold, and the task stays readable", async () => {
    const path = `/far-${unique("p").replace(" ", "-")}`;
    // QStash falls back to its own backoff past a day; celeriac must not store a date past the last one.
    rx.script(path, [{ status: 503, headers: { "retry-after": "100000000000000000" } }]);
    const r = await call("POST", "/v1/tasks/webhook", { payload: { url: `${rx.base}${path}` } });
    expect(r.status).toBe(202);
    const done = await settle(r.body.id, ["succeeded"]);
    expect(done).toMatchObject({ state: "succeeded", attempts: 2 });
    expect(Date.parse(done.runAt)).toBeLessThan(Date.now() + 86_400_000);
    const listed = await call("GET", "/v1/tasks?task=webhook&limit=100");
    expect(listed.status).toBe(200);
  });
});
