// Dead letters end to end (Worker in workerd, local broker with its DLQ): failed webhook tasks are
// listed with their QStash DLQ message, replayed one by one or by filter (a dry run first; a second
// replay of the same filter enqueues nothing), and discarded (the DLQ message goes too).
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, settle, stack, until } from "./helpers/api.ts";
import { startWebhookReceiver, type WebhookReceiver } from "./helpers/webhook-receiver.ts";

let rx: WebhookReceiver;
beforeAll(async () => {
  rx = await startWebhookReceiver(stack().env.CELERIAC_WEBHOOK_SECRET!);
});
afterAll(() => rx?.close());

const hook = (path: string) => call("POST", "/v1/tasks/webhook", { payload: { url: `${rx.base}${path}`, body: { json: { n: 1 } } } });
const dlqIds = async (): Promise<string[]> => {
  const r = await fetch(`${stack().broker}/v2/dlq`, { headers: { authorization: `Bearer ${stack().env.QSTASH_TOKEN}` } });
  return ((await r.json()).messages as { dlqId: string }[]).map((m) => m.dlqId);
};
/** Dead letters with this code since `since`, once `n` of them carry their DLQ message. */
const deadWith = (code: string, since: number, n: number) =>
  until(`${n} dead letters with ${code}`, async () => {
    const r = await call("GET", `/v1/dead?code=${code}&since=${Math.floor(since / 1000)}&limit=100`);
    return r.body.tasks.filter((t: any) => t.dlq).length === n ? r.body.tasks : undefined;
  });

describe("dead letters", () => {
  it("lists failed tasks with their DLQ message, replays one, discards one", async () => {
    const since = Date.now() - 1000;
    const [a, b] = [`/dead/${randomUUID()}`, `/dead/${randomUUID()}`];
    rx.script(a, [{ status: 451, body: "unavailable for legal reasons" }]);
    rx.script(b, [{ status: 451 }]);
    const ta = (await hook(a)).body.id;
    expect((await settle(ta)).state).toBe("failed");
    const tb = (await hook(b)).body.id;
    expect((await settle(tb)).state).toBe("failed");

    const listed = await deadWith("http_451", since, 2);
    // Newest failure first, each with why it failed and what QStash kept.
    expect(listed.map((t: any) => t.id)).toEqual([tb, ta]);
    expect(listed[1]).toMatchObject({ id: ta, task: "webhook", state: "failed", error: { code: "http_451", retryable: false } });
    expect(listed[1].dlq).toMatchObject({ dlqId: listed[1].dlqId, responseStatus: 489 });
    expect(await dlqIds()).toEqual(expect.arrayContaining([listed[0].dlqId, listed[1].dlqId]));
    expect((await call("GET", `/v1/dead?task=webhook&code=http_451&since=${new Date(since).toISOString()}`)).body.tasks).toHaveLength(2);
    const page = await call("GET", `/v1/dead?code=http_451&since=${Math.floor(since / 1000)}&limit=1`);
    expect(page.body.tasks.map((t: any) => t.id)).toEqual([tb]);
    const next = await call("GET", `/v1/dead?code=http_451&since=${Math.floor(since / 1000)}&limit=1&cursor=${page.body.cursor}`);
    expect(next.body.tasks.map((t: any) => t.id)).toEqual([ta]);

    // Replay one: same id, runs again (the receiver now answers 200), leaves the dead letters and the DLQ.
    const replayed = await call("POST", `/v1/dead/${ta}/replay`);
    expect(replayed.status).toBe(202);
    expect(replayed.body).toMatchObject({ id: ta, state: "queued", generation: 1 });
    expect((await settle(ta)).state).toBe("succeeded");
    expect(await dlqIds()).not.toContain(listed[1].dlqId);
    expect((await call("POST", `/v1/dead/${ta}/replay`)).body.error.code).toBe("not_dead");

    // Discard one: it stays failed, leaves the list, and its DLQ message is deleted.
    const discarded = await call("DELETE", `/v1/dead/${tb}`);
    expect(discarded.status).toBe(200);
    expect(discarded.body).toEqual({ id: tb, discarded: true, dlqId: listed[0].dlqId, dlqDeleted: true });
    expect(await dlqIds()).not.toContain(listed[0].dlqId);
    const kept = (await call("GET", `/v1/tasks/${tb}`)).body;
    expect(kept).toMatchObject({ state: "failed", discardedAt: expect.any(String) });
    expect((await call("GET", `/v1/dead?code=http_451&since=${Math.floor(since / 1000)}`)).body.tasks).toEqual([]);
    expect((await call("DELETE", `/v1/dead/${tb}`)).status).toBe(409);
    expect((await call("POST", `/v1/dead/${tb}/replay`)).status).toBe(409);
  });

  it("replays by filter: a dry run counts, a replay enqueues each once, a second replay nothing", async () => {
    const since = Date.now() - 1000;
    const path = `/dead/${randomUUID()}`;
    rx.script(path, [{ status: 410 }, { status: 410 }, { status: 410 }]);
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await hook(path)).body.id);
    for (const id of ids) expect((await settle(id)).state).toBe("failed");
    await deadWith("http_410", since, 3);
    const filter = { task: "webhook", code: "http_410", since: Math.floor(since / 1000) };

    const dry = await call("POST", "/v1/dead/replay", { filter, dryRun: true });
    expect(dry.status).toBe(200);
    expect(dry.body).toMatchObject({ dryRun: true, matched: 3 });
    expect(dry.body.ids.sort()).toEqual([...ids].sort());
    for (const id of ids) expect((await call("GET", `/v1/tasks/${id}`)).body.state).toBe("failed");

    const [first, second] = await Promise.all([call("POST", "/v1/dead/replay", { filter }), call("POST", "/v1/dead/replay", { filter })]);
    // Concurrent replays of one filter: each task is taken by exactly one of them.
    expect(first.body.replayed + second.body.replayed).toBe(3);
    expect([...first.body.ids, ...second.body.ids].sort()).toEqual([...ids].sort());
    const again = await call("POST", "/v1/dead/replay", { filter });
    expect(again.body).toMatchObject({ matched: 0, replayed: 0 });
    for (const id of ids) {
      const done = await settle(id);
      expect(done).toMatchObject({ state: "succeeded", attempts: 2, generation: 1 });
    }
    expect(rx.receipts(path)).toHaveLength(6);
    expect((await call("POST", "/v1/dead/replay", { filter })).body).toMatchObject({ matched: 0, replayed: 0 });
  });

  it("answers bad input with 4xx and unknown ids with 404 unknown", async () => {
    expect((await call("POST", "/v1/dead/replay", { filter: { code: "http_499" } })).body).toMatchObject({ matched: 0, replayed: 0 });
    expect((await call("POST", "/v1/dead/replay", { filter: { code: "http_499" }, dryRun: true })).body).toMatchObject({ matched: 0 });
    const unknownTask = await call("POST", "/v1/dead/replay", { filter: { task: "nope" } });
    expect(unknownTask).toMatchObject({ status: 404, body: { error: { code: "unknown_task" } } });
    const badSince = await call("POST", "/v1/dead/replay", { filter: { since: "last tuesday" } });
    expect(badSince.status).toBe(400);
    expect(badSince.body.error.issues).toEqual([
      { path: "filter.since", message: "filter.since must be unix seconds or an ISO 8601 date" },
    ]);
    expect((await call("POST", "/v1/dead/replay", { filter: {}, dryrun: true })).status).toBe(400);
    expect((await call("POST", "/v1/dead/replay", undefined, { raw: "{" })).status).toBe(400);
    const soon = await call("GET", "/v1/dead?since=soon");
    expect(soon.status).toBe(400);
    expect(soon.body.error.issues[0]).toMatchObject({ path: "since", message: expect.stringContaining("since must be unix seconds") });
    expect((await call("GET", "/v1/dead?cursor=bogus")).status).toBe(400);
    expect((await call("GET", "/v1/dead?limit=0")).status).toBe(400);
    expect((await call("GET", "/v1/dead?task=nope")).status).toBe(404);
    for (const id of ["tsk_00000000000000000000000000", "not-an-id"]) {
      const r = await call("POST", `/v1/dead/${id}/replay`);
      expect(r).toMatchObject({ status: 404, body: { state: "unknown", error: { code: "unknown" } } });
      expect((await call("DELETE", `/v1/dead/${id}`)).status).toBe(404);
    }
    const noKey = await fetch(`${stack().worker}/v1/dead`);
    expect(noKey.status).toBe(401);
  });
});
