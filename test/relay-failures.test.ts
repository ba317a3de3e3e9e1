// What happens when a dependency is down or a worker dies mid-task. The app runs in-process
// (app.request) against the stack's real bridge and broker, with one dependency pointed at a
// closed port; the crashed-worker case goes through the Worker in workerd.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Client } from "@upstash/qstash";
import { Redis } from "@upstash/redis";
import { Resend } from "resend";
import { describe, expect, it } from "vitest";
import { DEV_API_KEY, freePort } from "../dev/stack.ts";
import { createApp } from "../src/app.ts";
import { call, keyPrefix, mailbox, postAsQstash, settle, stack, unique } from "./helpers/api.ts";

const app = createApp();
const DEAD = `http://127.0.0.1:${await freePort()}`; // nothing listens there
const enqueue = (env: Record<string, string>, subject: string, key: string) =>
  app.request(
    "/v1/tasks/send-email",
    {
      method: "POST",
      headers: { authorization: `Bearer ${DEV_API_KEY}`, "content-type": "application/json", "idempotency-key": key },
      body: JSON.stringify({ payload: { to: "ada@celeriac.dev", subject, text: "x" }, delay: "1h" }),
    },
    env,
  );
const redis = () => new Redis({ url: stack().env.UPSTASH_REDIS_REST_URL, token: stack().env.UPSTASH_REDIS_REST_TOKEN });
const qstash = () => new Client({ baseUrl: stack().broker, token: stack().env.QSTASH_TOKEN });

describe("a dependency is down", () => {
  it("QStash unreachable: 503, and the record and idempotency key written meanwhile are undone", async () => {
    const key = unique("qstash-down").replace(" ", "-");
    const env = { ...stack().env, QSTASH_URL: DEAD };
    const r = await enqueue(env, unique("no qstash"), key);
    expect(r.status).toBe(503);
    const body = (await r.json()) as any;
    expect(body.error.code).toBe("qstash_unavailable");
    expect(r.headers.get("retry-after")).toBe("5");
    expect(await redis().keys(`${keyPrefix()}idem:dev:${key}`)).toEqual([]);
    // Nothing of it is listed, and with QStash back the same key enqueues a fresh task.
    const listed = (await call("GET", "/v1/tasks?task=send-email&limit=100")).body.tasks;
    expect(listed.filter((t: any) => t.idempotencyKey === key)).toEqual([]);
    const again = await enqueue(stack().env, unique("qstash back"), key);
    expect(again.status).toBe(202);
  });

  it("Redis unreachable: 503, and the message published meanwhile is cancelled", async () => {
    const env = { ...stack().env, UPSTASH_REDIS_REST_URL: DEAD };
    const subject = unique("no redis");
    const r = await enqueue(env, subject, unique("redis-down").replace(" ", "-"));
    expect(r.status).toBe(503);
    expect(((await r.json()) as any).error.code).toBe("redis_unavailable");
    const state = await (
      await fetch(`${stack().broker}/_broker/state`, { headers: { authorization: `Bearer ${stack().env.QSTASH_TOKEN}` } })
    ).json();
    const pending = (state.messages as any[]).filter((m) => m.state !== "CANCELLED" && m.destination.endsWith("/qstash/deliver"));
    const bodies = await Promise.all(
      pending.map((m) =>
        qstash()
          .messages.get(m.messageId)
          .catch(() => null),
      ),
    );
    expect(bodies.filter((m) => m && String(m.body).includes(subject))).toEqual([]);
  });

  it("after a Redis-side 503, retrying with the same key enqueues a task with a live message", async () => {
    const key = unique("redis-back").replace(" ", "-");
    // Due later, so the undo's cancel finds the message still pending (in this test only the
    // in-process app's Redis is down; the Worker that QStash delivers to has its own).
    const send = (env: Record<string, string>) => enqueue(env, unique("runs after all"), key);
    expect((await send({ ...stack().env, UPSTASH_REDIS_REST_URL: DEAD })).status).toBe(503);
    // QStash may still remember the cancelled message's deduplication id; the retry must not
    // settle for that cancelled message.
    const r = await send(stack().env);
    expect(r.status).toBe(202);
    const body = (await r.json()) as any;
    await expect(qstash().messages.get(body.messageId)).resolves.toMatchObject({ messageId: body.messageId });
    expect((await call("DELETE", `/v1/tasks/${body.id}`)).status).toBe(200);
  });

  it("health reports an unreachable Redis as 503 with the reason, and a bad env by name", async () => {
    const down = await app.request("/healthz", {}, { ...stack().env, UPSTASH_REDIS_REST_URL: DEAD });
    expect(down.status).toBe(503);
    expect(((await down.json()) as any).checks.redis.ok).toBe(false);
    const bad = await app.request("/healthz", {}, { ...stack().env, QSTASH_TOKEN: "", CELERIAC_PUBLIC_URL: "not a url" });
    expect(bad.status).toBe(503);
    const problems: string[] = ((await bad.json()) as any).checks.config.problems;
    expect(problems.some((p) => p.includes("QSTASH_TOKEN"))).toBe(true);
    expect(problems.some((p) => p.includes("CELERIAC_PUBLIC_URL"))).toBe(true);
  });

  it("health checks QStash too, naming it when it is unreachable or refuses the token", async () => {
    const up = await app.request("/healthz", {}, { ...stack().env });
    expect(up.status).toBe(200);
    expect(await up.json()).toMatchObject({ ok: true, checks: { redis: { ok: true }, qstash: { ok: true } } });
    const down = await app.request("/healthz", {}, { ...stack().env, QSTASH_URL: DEAD });
    expect(down.status).toBe(503);
    expect(await down.json()).toMatchObject({ ok: false, down: ["qstash"], checks: { redis: { ok: true }, qstash: { ok: false } } });
    const refused = await app.request("/healthz", {}, { ...stack().env, QSTASH_TOKEN: "not-the-token" });
    expect(refused.status).toBe(503);
    const body = (await refused.json()) as any;
    expect(body.down).toEqual(["qstash"]);
    expect(body.checks.qstash.problem).toBe("QSTASH_TOKEN was refused (401)");
    const both = await app.request("/healthz", {}, { ...stack().env, QSTASH_URL: DEAD, UPSTASH_REDIS_REST_URL: DEAD });
    expect(((await both.json()) as any).down).toEqual(["redis", "qstash"]);
  });
  it("health reuses a healthy answer for a few seconds, so hammering it costs no QStash calls", async () => {
    // A QStash stand-in that counts the authenticated probes it gets.
    let probes = 0;
    const server = createServer((req, res) => {
      if (req.url === "/v2/keys") probes++;
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
    await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
    try {
      const env = { ...stack().env, QSTASH_URL: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
      const answers = await Promise.all(Array.from({ length: 5 }, () => app.request("/healthz", {}, env)));
      for (let i = 0; i < 5; i++) expect((await app.request("/healthz", {}, env)).status).toBe(200);
      expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
      expect(probes).toBe(1);
    } finally {
      await new Promise((ok) => server.close(ok));
    }
  });
});

describe("a worker dies mid-task", () => {
  // A task whose worker claimed it and died: the record says running, its claim still held, so
  // QStash's last attempt meets the claim (503) and QStash gives up and calls back.
  async function crashed(opts: { sentBeforeDying: boolean; rechecks?: number; leaseMs?: number }) {
    const payload = { to: "ada@celeriac.dev", subject: unique("crash"), text: "x" };
    const r = await call("POST", "/v1/tasks/send-email", { payload, delay: "1h", retries: 0 });
    const id = r.body.id;
    await call("DELETE", `/v1/tasks/${id}`); // drop the scheduled original; we redeliver by hand
    let emailId: string | undefined;
    if (opts.sentBeforeDying) {
      // What the dead attempt did: the send, under the task's idempotency key, through Resend's SDK,
      // tagged with its task as ctx.mail tags every email.
      const resend = new Resend(stack().env.RESEND_API_KEY, { baseUrl: stack().env.RESEND_BASE_URL });
      const tags = [{ name: "celeriac_task", value: id }];
      const sent = await resend.emails.send({ from: stack().env.CELERIAC_MAIL_FROM!, ...payload, tags }, { idempotencyKey: id });
      emailId = sent.data!.id;
    }
    await redis().hset(`${keyPrefix()}t:${id}`, { state: "running", attempts: 1, leaseUntil: Date.now() + (opts.leaseMs ?? 1_000) });
    const message = {
      v: 1,
      id,
      task: "send-email",
      payload,
      options: { retries: 0, timeout: 10, resultTtl: 60 },
      createdAt: Date.now(),
      runAt: Date.now(),
      // The last re-check, its attempt (the second) having died as the first did.
      ...(opts.rechecks !== undefined ? { recheck: { n: opts.rechecks - 1, attempts: 0 } } : {}),
    };
    await qstash().publishJSON({
      url: `${stack().env.CELERIAC_PUBLIC_URL}/qstash/deliver`,
      body: message,
      retries: 0,
      failureCallback: `${stack().env.CELERIAC_PUBLIC_URL}/qstash/failure`,
    });
    return { id, subject: payload.subject, emailId };
  }

  it("never marks failed a task whose email went out: the re-check after the claim lapses finds it sent", async () => {
    const { id, subject, emailId } = await crashed({ sentBeforeDying: true });
    const done = await settle(id, ["succeeded", "failed"]);
    expect(done.state).toBe("succeeded");
    expect(done.result.emailId).toBe(emailId); // Resend's answer to the first send, not a second email
    expect(await mailbox.withSubject(subject)).toHaveLength(1);
    expect(done.history.some((h: any) => h.state === "failed")).toBe(false);
  });

  it("a task whose worker died before sending is sent by the re-check, once, never left running", async () => {
    const { id, subject } = await crashed({ sentBeforeDying: false });
    const done = await settle(id, ["succeeded", "failed"]);
    expect(done.state).toBe("succeeded");
    expect(done.attempts).toBe(2);
    expect(await mailbox.withSubject(subject)).toHaveLength(1);
  });

  it("a task whose attempts keep dying is re-checked a bounded number of times, then failed as unknown", async () => {
    // The message of the last re-check: its attempt met a claim again (the attempt held the task
    // for an hour), so one more re-check would start the cycle again, for ever.
    const { id, subject } = await crashed({ sentBeforeDying: false, rechecks: 3, leaseMs: 3_600_000 });
    const done = await settle(id, ["failed"]);
    expect(done.error).toMatchObject({ code: "delivery_failed", retryable: false });
    expect(done.error.message).toMatch(/after 3 re-checks.*unknown/);
    expect(done.attempts).toBe(1); // no attempt ran: the claim was held throughout
    expect(await mailbox.withSubject(subject)).toHaveLength(0);
  });

  it("ignores a failure callback from before a retry through the API (another generation)", async () => {
    const r = await call("POST", "/v1/tasks/send-email", {
      payload: { to: "ada@celeriac.dev", subject: unique("gen"), text: "x" },
      delay: "1h",
    });
    const id = r.body.id;
    await redis().hset(`${keyPrefix()}t:${id}`, { gen: 1 }); // as if it failed once and was retried
    const url = `${stack().env.CELERIAC_PUBLIC_URL}/qstash/failure`;
    const callback = (gen: number) => {
      const source = {
        v: 1,
        id,
        task: "send-email",
        payload: {},
        options: { retries: 0, timeout: 10, resultTtl: 60 },
        createdAt: 0,
        runAt: 0,
        gen,
      };
      const body = JSON.stringify({
        status: 500,
        retried: 0,
        sourceMessageId: "msg_x",
        sourceBody: Buffer.from(JSON.stringify(source)).toString("base64"),
      });
      return postAsQstash(url, body);
    };
    expect(await (await callback(0)).json()).toEqual({ id, recorded: false });
    expect((await call("GET", `/v1/tasks/${id}`)).body.state).toBe("scheduled");
    expect(await (await callback(1)).json()).toEqual({ id, recorded: true });
    expect((await call("GET", `/v1/tasks/${id}`)).body).toMatchObject({ state: "failed", error: { code: "delivery_failed" } });
  });
});
