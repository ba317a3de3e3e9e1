// Completion callbacks end to end: tasks enqueued on the Worker in workerd with a `callback`, the
// callback sent as its own durable task through the local broker, received by a local endpoint
// that verifies every request with the official `standardwebhooks` package.
import { randomUUID } from "node:crypto";
import { Webhook } from "standardwebhooks";
import * as v from "valibot";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serveNode } from "../src/node.ts";
import { defineTask } from "../src/task.ts";
import { tasks as builtIn } from "../tasks/index.ts";
import webhook from "../tasks/webhook.ts";
import { call, settle, stack, until } from "./helpers/api.ts";
import { type Receipt, startWebhookReceiver, type WebhookReceiver } from "./helpers/webhook-receiver.ts";

let rx: WebhookReceiver;
beforeAll(async () => {
  rx = await startWebhookReceiver(stack().env.CELERIAC_WEBHOOK_SECRET!);
});
afterAll(() => rx?.close());

const newPath = (what: string) => `/${what}/${randomUUID()}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Waits until `path` has received `n` requests the receiver verified. */
const verified = (path: string, n: number) =>
  until(`${n} verified callbacks on ${path}`, async () => {
    const got = rx.receipts(path).filter((r) => r.signature === "valid");
    return got.length >= n ? got : undefined;
  });
const bodyOf = (r: Receipt) => JSON.parse(r.body);
const webhookTask = (url: string, options: Record<string, unknown>) =>
  call("POST", "/v1/tasks/webhook", { payload: { url, body: { json: { order: 7 } } }, ...options });

describe("completion callbacks", () => {
  it("delivers one verified task.succeeded, retried through a 503, with a stable webhook-id", async () => {
    const cb = newPath("cb");
    rx.script(cb, [{ status: 503, body: "busy" }]);
    const r = await webhookTask(`${rx.base}${newPath("work")}`, { callback: `${rx.base}${cb}` });
    expect(r.status).toBe(202);
    const done = await settle(r.body.id);
    expect(done.state).toBe("succeeded");

    const [first, second] = await verified(cb, 2);
    await sleep(500); // a duplicate would have arrived by now
    expect(rx.receipts(cb)).toHaveLength(2);
    expect(first!.headers["webhook-id"]).toBe(`${r.body.id}.task.succeeded`);
    expect(second!.headers["webhook-id"]).toBe(`${r.body.id}.task.succeeded`);
    const event = bodyOf(second!);
    expect(event).toEqual({
      type: "task.succeeded",
      id: r.body.id,
      task: "webhook",
      state: "succeeded",
      attempts: 1,
      result: done.result,
      at: done.finishedAt,
    });

    // Recorded on the task: the callback's own attempts and its last error.
    const rec = await until("the callback recorded as delivered", async () => {
      const t = (await call("GET", `/v1/tasks/${r.body.id}`)).body;
      return t.callbacks?.[0]?.status === "delivered" ? t : undefined;
    });
    expect(rec.state).toBe("succeeded");
    expect(rec.callback).toEqual({ url: `${rx.base}${cb}`, events: expect.arrayContaining(["task.succeeded", "task.failed"]) });
    expect(rec.callbacks).toEqual([
      { event: "task.succeeded", status: "delivered", attempts: 2, lastError: expect.stringContaining("503"), id: expect.any(String) },
    ]);
  });

  it("tells why a task failed, and a failing callback leaves the task as it was", async () => {
    const work = newPath("work");
    rx.script(work, [{ status: 400, body: "no such order" }]);
    const cb = newPath("cb");
    rx.script(cb, [{ status: 410 }]); // the callback itself fails for good
    const r = await webhookTask(`${rx.base}${work}`, { callback: { url: `${rx.base}${cb}`, events: ["task.failed"] } });
    const done = await settle(r.body.id);
    expect(done.state).toBe("failed");
    const [got] = await verified(cb, 1);
    expect(bodyOf(got!)).toMatchObject({
      type: "task.failed",
      id: r.body.id,
      state: "failed",
      attempts: 1,
      error: { code: "http_400", retryable: false },
    });
    expect(bodyOf(got!).error.message).toContain("answered 400");
    const rec = await until("the callback recorded as failed", async () => {
      const t = (await call("GET", `/v1/tasks/${r.body.id}`)).body;
      return t.callbacks?.[0]?.status === "failed" ? t : undefined;
    });
    expect(rec).toMatchObject({ state: "failed", error: { code: "http_400" } });
    expect(rec.callbacks[0]).toMatchObject({ event: "task.failed", attempts: 1, lastError: expect.stringContaining("410") });
  });

  it("keeps the callback through a replay: the new ending is told under <id>.<event>.g1", async () => {
    const work = newPath("work");
    rx.script(work, [{ status: 409 }]);
    const cb = newPath("cb");
    const r = await webhookTask(`${rx.base}${work}`, { callback: `${rx.base}${cb}` });
    expect((await settle(r.body.id)).state).toBe("failed");
    const [failed] = await verified(cb, 1);
    expect(failed!.headers["webhook-id"]).toBe(`${r.body.id}.task.failed`);
    await until("the dead letter", async () => ((await call("POST", `/v1/dead/${r.body.id}/replay`)).status === 202 ? true : undefined));
    expect((await settle(r.body.id)).state).toBe("succeeded");
    const got = await verified(cb, 2);
    expect(got[1]!.headers["webhook-id"]).toBe(`${r.body.id}.task.succeeded.g1`);
    expect(bodyOf(got[1]!)).toMatchObject({ type: "task.succeeded", id: r.body.id, attempts: 2 });
  });

  it("tells a cancelled task's caller", async () => {
    const cb = newPath("cb");
    const r = await webhookTask(`${rx.base}${newPath("work")}`, { callback: `${rx.base}${cb}`, delay: "1h" });
    expect(r.body.state).toBe("scheduled");
    expect((await call("DELETE", `/v1/tasks/${r.body.id}`)).body.state).toBe("cancelled");
    const [got] = await verified(cb, 1);
    expect(got!.headers["webhook-id"]).toBe(`${r.body.id}.task.cancelled`);
    expect(bodyOf(got!)).toMatchObject({ type: "task.cancelled", id: r.body.id, state: "cancelled", attempts: 0 });
  });

  it("passes an email's delivery events to the subscribed ones: bounced@resend.dev → email.bounced", async () => {
    const cb = newPath("cb");
    const to = `bounced+${randomUUID().slice(0, 8)}@resend.dev`;
    const r = await call("POST", "/v1/tasks", {
      tasks: [
        {
          task: "send-email",
          payload: { to, subject: "cb", text: "hi" },
          callback: { url: `${rx.base}${cb}`, events: ["task.succeeded", "email.bounced", "email.delivered"] },
        },
      ],
    });
    const id = r.body.tasks[0].id;
    const got = await verified(cb, 2);
    await sleep(300);
    const events = rx.receipts(cb).map(bodyOf);
    expect(events.map((e) => e.type).sort()).toEqual(["email.bounced", "task.succeeded"]);
    const bounced = events.find((e) => e.type === "email.bounced");
    expect(bounced).toMatchObject({ id, task: "send-email", state: "succeeded", delivery: { status: "bounced" } });
    expect(got.find((g) => bodyOf(g).type === "email.bounced")!.headers["webhook-id"]).toBe(`${id}.email.bounced`);
  });

  it("refuses callback URLs that are not http(s), private, too long or carry credentials: 422 naming callback", async () => {
    const cases = [
      "ftp://hooks.example.com/x",
      "http://10.0.0.8/hook",
      `https://hooks.example.com/${"a".repeat(2100)}`,
      "https://user:pw@hooks.example.com/x",
      "not a url",
    ];
    for (const callback of cases) {
      const r = await webhookTask("https://hooks.example.com/work", { callback });
      expect(r.status, callback).toBe(422);
      expect(r.body.error.issues.map((i: any) => i.path)).toEqual(["callback"]);
    }
    const batch = await call("POST", "/v1/tasks", {
      tasks: [
        { task: "webhook", payload: { url: "https://hooks.example.com/a" } },
        { task: "webhook", payload: { url: "https://hooks.example.com/b" }, callback: { url: "http://169.254.169.254/latest" } },
      ],
    });
    expect(batch.status).toBe(422);
    expect(batch.body.error.issues.map((i: any) => i.path)).toEqual(["tasks.1.callback"]);
    expect(batch.body.error.issues[0].message).toContain("metadata");
    const badEvents = await webhookTask("https://hooks.example.com/work", {
      callback: { url: "https://hooks.example.com/cb", events: ["task.exploded"] },
    });
    expect(badEvents.status).toBe(400);
    expect(badEvents.body.error.issues[0].path).toContain("callback");
    // Callbacks are celeriac's own task type: callers cannot enqueue one.
    const internal = await call("POST", "/v1/tasks/callback", { payload: {} });
    expect(internal).toMatchObject({ status: 404, body: { error: { code: "unknown_task" } } });
  });
});

describe("callbacks from inside a task", () => {
  it("ctx.enqueue passes a callback on: the follow-up's caller is told", async () => {
    const tag = randomUUID().slice(0, 6);
    const cb = newPath("cb");
    const chain = defineTask({
      name: `chain-${tag}`,
      input: v.object({ url: v.string(), callback: v.string() }),
      async run({ url, callback }, ctx) {
        const next = await ctx.enqueue(
          webhook,
          { url, body: { json: { from: ctx.id } } },
          { callback: { url: callback, events: ["task.succeeded"] } },
        );
        return { next: next.id };
      },
    });
    const env = { ...stack().env };
    const app = await serveNode({ port: 0, tasks: [...builtIn, chain], env: () => env });
    env.CELERIAC_PUBLIC_URL = app.url;
    try {
      const r = await call(
        "POST",
        `/v1/tasks/chain-${tag}`,
        { payload: { url: `${rx.base}${newPath("work")}`, callback: `${rx.base}${cb}` } },
        { base: app.url },
      );
      const parent = await settle(r.body.id, ["succeeded"], app.url);
      const [got] = await verified(cb, 1);
      expect(got!.headers["webhook-id"]).toBe(`${parent.result.next}.task.succeeded`);
      expect(bodyOf(got!)).toMatchObject({ type: "task.succeeded", id: parent.result.next, task: "webhook" });
      // Callers cannot name the callback task themselves, from the API or from a task.
      expect((await call("POST", "/v1/tasks", { tasks: [{ task: "callback", payload: {} }] }, { base: app.url })).status).toBe(422);
    } finally {
      await app.close();
    }
  });

  it("a forged Resend event tells the caller nothing", async () => {
    const cb = newPath("cb");
    const to = `grace+${randomUUID().slice(0, 8)}@celeriac.dev`;
    const r = await call("POST", "/v1/tasks/send-email", { payload: { to, subject: "forged", text: "hi" }, callback: `${rx.base}${cb}` });
    await verified(cb, 2); // task.succeeded and email.delivered
    const body = JSON.stringify({
      type: "email.bounced",
      created_at: new Date().toISOString(),
      data: { email_id: randomUUID(), to: [to], tags: { celeriac_task: r.body.id } },
    });
    const id = `msg_${randomUUID().replaceAll("-", "")}`;
    const at = new Date();
    const forged = new Webhook(`whsec_${Buffer.from("someone else").toString("base64")}`).sign(id, at, body);
    const res = await fetch(`${stack().worker}/webhooks/resend`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "svix-id": id,
        "svix-timestamp": String(Math.floor(at.getTime() / 1000)),
        "svix-signature": forged,
      },
      body,
    });
    expect(res.status).toBe(401);
    await sleep(500);
    expect(
      rx
        .receipts(cb)
        .map((x) => bodyOf(x).type)
        .sort(),
    ).toEqual(["email.delivered", "task.succeeded"]);
    expect((await call("GET", `/v1/tasks/${r.body.id}`)).body.delivery.status).toBe("delivered");
  });
});
