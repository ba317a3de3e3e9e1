// Coalesced sending and rate limits end to end: send-email's deliveries join an outbox and go out
// in Resend batch calls (the Worker in workerd, the local broker at time scale 0.05, the mail sink
// with Resend's default limit on the same scaled clock); a 429 never fails a task.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Redis } from "@upstash/redis";
import { afterEach, describe, expect, it } from "vitest";
import { broker, call, keyPrefix, mailbox, settle, stack, unique, until } from "./helpers/api.ts";

afterEach(() => mailbox.clearFaults());

const email = (subject: string, to = "ada@celeriac.dev") => ({ to, subject, text: `hello from ${subject}` });
/** Enqueues tasks in batches of 100 through `POST /v1/tasks`, all at once; returns the ids in order. */
async function enqueueMany(task: string, payloads: unknown[]): Promise<string[]> {
  const groups = Array.from({ length: Math.ceil(payloads.length / 100) }, (_, i) => payloads.slice(i * 100, i * 100 + 100));
  const replies = await Promise.all(groups.map((g) => call("POST", "/v1/tasks", { tasks: g.map((payload) => ({ task, payload })) })));
  for (const r of replies) expect(r.status).toBe(202);
  return replies.flatMap((r) => r.body.tasks.map((t: any) => t.id));
}
const redis = () => new Redis({ url: stack().env.UPSTASH_REDIS_REST_URL, token: stack().env.UPSTASH_REDIS_REST_TOKEN });
/** Every task's record once none is left unfinished (polled in Redis, so the Worker is left to its work). */
async function settleAll(ids: string[], ms = 60_000): Promise<any[]> {
  await until(
    `${ids.length} tasks to finish`,
    async () => {
      const p = redis().pipeline();
      for (const id of ids) p.hget(`${keyPrefix()}t:${id}`, "state");
      const states = await p.exec<string[]>();
      return states.every((s) => ["succeeded", "failed", "cancelled"].includes(s)) ? true : undefined;
    },
    ms,
  );
  const recs: any[] = [];
  for (let i = 0; i < ids.length; i += 50) {
    recs.push(...(await Promise.all(ids.slice(i, i + 50).map(async (id) => (await call("GET", `/v1/tasks/${id}`)).body))));
  }
  return recs;
}

describe("coalesced send-email", () => {
  it("a batch of good and bad emails: each task ends in its own state, the good ones sent once in batch calls", async () => {
    const mark = unique("mixed");
    const ids = await enqueueMany("send-email", [
      email(`${mark} 1`),
      email(`${mark} bad`, "someone@example.com"),
      email(`${mark} 2`),
      email(`${mark} 3`),
    ]);
    const recs = await settleAll(ids);
    expect(recs.map((r) => r.state)).toEqual(["succeeded", "failed", "succeeded", "succeeded"]);
    expect(recs[1].error).toMatchObject({ code: "mail_rejected", retryable: false });
    expect(recs[1].error.message).toMatch(/example\.com/);
    expect(recs[1].attempts).toBe(1);
    const sent = (await mailbox.all()).filter((e) => e.subject.startsWith(mark));
    expect(sent.map((e) => e.subject).sort()).toEqual([`${mark} 1`, `${mark} 2`, `${mark} 3`]);
    // Each task's result is its own email, sent once, through Resend's batch endpoint under a batch
    // key. (Usually all three share one call; on a loaded machine a delivery can arrive after its
    // window's flush and go in the next one: maxWaitMs bounds the wait, not the company.)
    for (const r of [recs[0], recs[2], recs[3]]) expect(sent.map((e) => e.id)).toContain(r.result.emailId);
    for (const e of sent) {
      expect(e.endpoint).toBe("/emails/batch");
      expect(e.idempotency_key).toMatch(/^celeriac-batch\/send-email\./);
    }
  });

  it("a flush whose answer was lost is retried with the same batch id, and sends nothing twice", async () => {
    await mailbox.fault({ mode: "accept-then-drop", count: 1 });
    const mark = unique("lost batch answer");
    const ids = await enqueueMany("send-email", [email(`${mark} a`), email(`${mark} b`)]);
    const recs = await settleAll(ids);
    for (const r of recs) {
      expect(r.state).toBe("succeeded");
      expect(r.history.some((h: any) => h.state === "retrying")).toBe(true);
    }
    const sent = (await mailbox.all()).filter((e) => e.subject.startsWith(mark));
    expect(sent.map((e) => e.subject).sort()).toEqual([`${mark} a`, `${mark} b`]);
    expect(recs.map((r) => r.result.emailId).sort()).toEqual(sent.map((e) => e.id).sort());
  });

  it("duplicate and concurrent deliveries of a batched task send one email", async () => {
    const subject = unique("dup batched");
    const r = await call("POST", "/v1/tasks/send-email", { payload: email(subject), delay: "60s" });
    // Three copies at once, before its due time: all acknowledged, the task joins once.
    const { statuses } = await broker.deliver(r.body.messageId, 3);
    expect(statuses).toEqual([200, 200, 200]);
    const done = await settle(r.body.id);
    expect(done).toMatchObject({ state: "succeeded", attempts: 1 });
    // Redelivered after it finished: acknowledged without running.
    expect((await broker.deliver(r.body.messageId, 2)).statuses).toEqual([200, 200]);
    await new Promise((res) => setTimeout(res, 300));
    expect(await mailbox.withSubject(subject)).toHaveLength(1);
    expect((await call("GET", `/v1/tasks/${r.body.id}`)).body.attempts).toBe(1);
    await call("DELETE", `/v1/tasks/${r.body.id}`); // the scheduled original: it already ran
  });

  it("a lone email does not wait for company: its flush is due maxWaitMs after it joined", async () => {
    const subject = unique("lone");
    const r = await call("POST", "/v1/tasks/send-email", { payload: email(subject) });
    expect((await settle(r.body.id)).state).toBe("succeeded");
    const [sent] = await mailbox.withSubject(subject);
    // Its batch held it alone…
    const batchmates = (await mailbox.all()).filter((e) => e.idempotency_key === sent.idempotency_key);
    expect(batchmates).toHaveLength(1);
    // …and the flush that sent it was published due maxWaitMs (send-email's: 200 ms) after the
    // join, which the broker's event log shows on its scaled clock.
    const batchId = sent.idempotency_key.slice("celeriac-batch/".length);
    const auth = { authorization: `Bearer ${stack().env.QSTASH_TOKEN}` };
    const { events } = await (
      await fetch(`${stack().broker}/v2/events?label=${encodeURIComponent(batchId)}&state=CREATED`, { headers: auth })
    ).json();
    expect(events).toHaveLength(1);
    expect(events[0].url).toMatch(/\/qstash\/flush$/);
    // Due within maxWaitMs of the join (the publish comes a moment after the join, so on the
    // scaled clock it reads a little under it; whole-ms rounding allows one more), never later.
    const dueIn = events[0].nextDeliveryTime - events[0].time;
    expect(dueIn).toBeGreaterThan(0);
    expect(dueIn).toBeLessThanOrEqual(200 * stack().timeScale + 1);
  });

  /**
   * Two send-email tasks held by a batch whose flush's worker died: running, the batch lease at
   * `leaseUntil`; `prepare` may change them before the flush is redelivered.
   */
  async function crashedBatch(
    mark: string,
    leaseUntil: number,
    extra: Record<string, unknown> = {},
    prepare?: (ids: string[]) => Promise<void>,
  ) {
    const ids = await Promise.all(
      [`${mark} a`, `${mark} b`].map(async (subject) => {
        const r = await call("POST", "/v1/tasks/send-email", { payload: email(subject), delay: "1h" });
        await call("DELETE", `/v1/tasks/${r.body.id}`); // drop its own message: the batch holds it now
        return r.body.id as string;
      }),
    );
    const window = `zz${Date.now().toString(36)}`;
    for (const id of ids) await redis().hset(`${keyPrefix()}t:${id}`, { state: "running", batch: `send-email.${window}`, leaseUntil });
    await redis().hset(`${keyPrefix()}b:send-email.${window}`, { items: ids.join(","), attempt: 1, leaseUntil });
    await redis().expire(`${keyPrefix()}b:send-email.${window}`, 600);
    await prepare?.(ids);
    const { Client } = await import("@upstash/qstash");
    // QStash redelivers the flush (here: publishes it again, as its retry would).
    await new Client({ baseUrl: stack().broker, token: stack().env.QSTASH_TOKEN }).publishJSON({
      url: `${stack().env.CELERIAC_PUBLIC_URL}/qstash/flush`,
      body: { v: 1, flush: { task: "send-email", key: "", window }, ...extra },
      retries: 0,
      failureCallback: `${stack().env.CELERIAC_PUBLIC_URL}/qstash/failure`,
    });
    return ids;
  }

  it("a crashed flush's items are picked up again once its lease has passed, and sent once", async () => {
    const mark = unique("crashed flush");
    const recs = await settleAll(await crashedBatch(mark, Date.now() - 1000));
    for (const r of recs) expect(r).toMatchObject({ state: "succeeded", attempts: 1 });
    const sent = (await mailbox.all()).filter((e) => e.subject.startsWith(mark));
    expect(sent).toHaveLength(2);
  });

  it("when QStash gives up on a flush whose call went out but whose answer was lost, a re-check with the same batch id records the emails sent, once", async () => {
    await mailbox.fault({ mode: "accept-then-drop", count: 1 });
    const mark = unique("given-up sent flush");
    // The flush's only attempt sends the batch and loses the answer (items `retrying`); QStash gives up.
    const recs = await settleAll(await crashedBatch(mark, Date.now() - 1000));
    for (const r of recs) {
      expect(r).toMatchObject({ state: "succeeded" });
      expect(r.history.some((h: any) => h.state === "retrying")).toBe(true);
    }
    const sent = (await mailbox.all()).filter((e) => e.subject.startsWith(mark));
    expect(sent.map((e) => e.subject).sort()).toEqual([`${mark} a`, `${mark} b`]);
    expect(recs.map((r) => r.result.emailId).sort()).toEqual(sent.map((e) => e.id).sort());
  });

  it("a task whose batch will retry its call cannot be cancelled (that call sends it whatever its record says); one back in its outbox can", async () => {
    const [held, waiting] = await Promise.all(
      ["held", "waiting"].map(async (which) => {
        const r = await call("POST", "/v1/tasks/send-email", { payload: email(unique(`cancel ${which}`)), delay: "1h" });
        return r.body.id as string;
      }),
    );
    // Both were taken by a batch whose call failed as a whole; `waiting` then failed alone and is back in the outbox.
    const batch = `send-email.zz${Date.now().toString(36)}`;
    for (const id of [held!, waiting!]) await redis().hset(`${keyPrefix()}t:${id}`, { state: "retrying", batch, attempts: 1 });
    await redis().hset(`${keyPrefix()}b:${batch}`, { items: `${held},${waiting}`, attempt: 1 });
    await redis().expire(`${keyPrefix()}b:${batch}`, 600);
    await redis().zadd(`${keyPrefix()}ob:send-email:`, { score: Date.now(), member: waiting! });
    const refused = await call("DELETE", `/v1/tasks/${held}`);
    expect(refused.status).toBe(409);
    expect(refused.body.error).toMatchObject({ code: "not_cancellable" });
    expect(refused.body.error.message).toContain(`retrying in batch ${batch}`);
    expect((await call("GET", `/v1/tasks/${held}`)).body.state).toBe("retrying");
    expect((await call("DELETE", `/v1/tasks/${waiting}`)).status).toBe(200);
    // Tidy up: the held task's own message is still scheduled.
    await redis().hset(`${keyPrefix()}t:${held}`, { state: "scheduled" });
    await redis().hdel(`${keyPrefix()}t:${held}`, "batch");
    expect((await call("DELETE", `/v1/tasks/${held}`)).status).toBe(200);
  });

  it("when QStash gives up on a flush whose re-checks are spent, the items it held are failed, never left running", async () => {
    const mark = unique("given-up flush");
    // The lease is still held, so the flush's only attempt is told to come back; QStash gives up,
    // and this flush is already the last re-check (MAX_RECHECKS = 3) of a batch that ran once.
    const recs = await settleAll(await crashedBatch(mark, Date.now() + 3_600_000, { recheck: { n: 3, attempt: 1 } }));
    for (const r of recs) expect(r).toMatchObject({ state: "failed", error: { code: "delivery_failed" } });
    expect(recs[0].error.message).toMatch(/gave up on batch send-email\..*whether it took effect is unknown/);
    expect((await mailbox.all()).filter((e) => e.subject.startsWith(mark))).toHaveLength(0);
  });

  it("when QStash gives up on a flush, an item of its batch that failed alone and waits in its outbox for its retry is not failed", async () => {
    const mark = unique("given-up flush, item waiting");
    const outbox = `${keyPrefix()}ob:send-email:`;
    let waiting = "";
    const [held] = await crashedBatch(mark, Date.now() + 3_600_000, { recheck: { n: 3, attempt: 1 } }, async ([, b]) => {
      waiting = b!;
      await redis().hset(`${keyPrefix()}t:${waiting}`, { state: "retrying" });
      await redis().zadd(outbox, { score: Date.now() + 3_600_000, member: waiting });
    });
    expect((await settle(held!)).error.code).toBe("delivery_failed");
    expect((await call("GET", `/v1/tasks/${waiting}`)).body.state).toBe("retrying");
    await redis().zrem(outbox, waiting); // tidy: no flush is to wait for it
  });
});

describe("under Resend's limit", () => {
  it("1,000 emails enqueued at once all end succeeded, each sent once", async () => {
    const mark = unique("noon");
    const ids = await enqueueMany(
      "send-email",
      Array.from({ length: 1000 }, (_, i) => email(`${mark} #${i}`, `customer+${i}@celeriac.dev`)),
    );
    const recs = await settleAll(ids, 120_000);
    expect(recs.filter((r) => r.state !== "succeeded")).toEqual([]);
    const sent = (await mailbox.all()).filter((e) => e.subject.startsWith(mark));
    expect(sent).toHaveLength(1000);
    expect(new Set(sent.map((e) => e.subject)).size).toBe(1000);
    // Coalesced: far fewer calls than emails, none over Resend's 100 per batch.
    const calls = new Map<string, number>();
    for (const e of sent) calls.set(e.idempotency_key, (calls.get(e.idempotency_key) ?? 0) + 1);
    expect(calls.size).toBeLessThan(100);
    expect(Math.max(...calls.values())).toBeLessThanOrEqual(100);
  }, 180_000);

  it("1,000 unbatched webhook tasks against a receiver that answers 429 to all but 5 a second all succeed", async () => {
    // 5 per second on the broker's scaled clock (time scale 0.05: 5 per 50 ms), Retry-After: 1.
    const windowMs = 1000 * stack().timeScale;
    const admitted: number[] = [];
    const got = new Map<string, number>();
    let refused = 0;
    const server = http.createServer((req, res) => {
      req.resume();
      const now = Date.now();
      while (admitted.length && admitted[0]! <= now - windowMs) admitted.shift();
      if (admitted.length >= 5) {
        refused++;
        return void res.writeHead(429, { "retry-after": "1" }).end();
      }
      admitted.push(now);
      const id = req.headers["webhook-id"] as string;
      got.set(id, (got.get(id) ?? 0) + 1);
      res.writeHead(200, { "content-type": "text/plain" }).end("ok");
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const ids = await enqueueMany(
        "webhook",
        Array.from({ length: 1000 }, (_, i) => ({ url: `${base}/n/${i}`, body: { text: String(i) } })),
      );
      const recs = await settleAll(ids, 400_000);
      expect(recs.filter((r) => r.state !== "succeeded").map((r) => [r.state, r.error?.code])).toEqual([]);
      expect(refused).toBeGreaterThan(0); // the limit was met, and no task failed for it
      // Every task reached the receiver. A webhook is at least once by nature (an answer lost to a
      // timeout is retried), so a repeat may happen under load, but always with the task's own
      // webhook-id, by which receivers drop it.
      expect(ids.filter((id) => !got.has(id))).toEqual([]);
      expect([...got.keys()].every((id) => ids.includes(id))).toBe(true);
    } finally {
      await new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      });
    }
  }, 420_000);
});
