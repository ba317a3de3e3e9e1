import { Hono, type Context } from "hono";
import * as v from "valibot";
import { messageOf } from "../src/errors.ts";
import { TASK_ID, scheduledRunId } from "../src/ids.ts";
import { DELIVER_PATH, FAILURE_PATH, type TaskMessage } from "../src/queue.ts";
import { relayOf, type AppEnv } from "../src/relay.ts";
import { runDelivery } from "../src/runner.ts";

const Message = v.object({
  v: v.literal(1),
  id: v.pipe(v.string(), v.regex(TASK_ID)),
  task: v.string(),
  payload: v.unknown(),
  options: v.object({ retries: v.number(), timeout: v.number(), resultTtl: v.number() }),
  createdAt: v.number(),
  runAt: v.number(),
  idempotencyKey: v.optional(v.string()),
  scheduleId: v.optional(v.string()),
  gen: v.optional(v.number()),
});

const Scheduled = v.object({
  v: v.literal(1),
  schedule: v.string(),
  task: v.string(),
  payload: v.unknown(),
  options: Message.entries.options,
});

/** A delivery's task: a published task as it is, a scheduled run with its per-firing id. */
async function toTask(raw: unknown, messageId: string, now: number): Promise<TaskMessage> {
  const scheduled = v.safeParse(Scheduled, raw);
  if (!scheduled.success) return v.parse(Message, raw) as TaskMessage;
  const s = scheduled.output;
  return {
    v: 1,
    id: await scheduledRunId(messageId),
    task: s.task,
    payload: s.payload,
    options: s.options,
    createdAt: now,
    runAt: now,
    scheduleId: s.schedule,
  };
}

const FailureCallback = v.object({
  status: v.optional(v.number()),
  retried: v.optional(v.number()),
  maxRetries: v.optional(v.number()),
  sourceMessageId: v.optional(v.string()),
  sourceBody: v.string(),
  body: v.optional(v.string()),
  dlqId: v.optional(v.string()),
});

/**
 * Verifies QStash's signature over the raw body, `sub` included (against the configured public
 * URL, not the URL this request happened to arrive at). Returns the body, or null after which the
 * caller answers 401 and does nothing.
 */
async function verified(c: Context<AppEnv>): Promise<string | null> {
  const relay = relayOf(c);
  const signature = c.req.header("upstash-signature");
  const body = await c.req.text();
  if (!signature) return null;
  const url = new URL(c.req.url);
  try {
    await relay.services.receiver.verify({ signature, body, url: relay.config.publicUrl + url.pathname + url.search });
    return body;
  } catch (err) {
    console.warn(`[celeriac] rejected a delivery to ${url.pathname}: ${messageOf(err)}`);
    return null;
  }
}

const unsigned = (c: Context<AppEnv>) =>
  c.json({ error: { code: "invalid_signature", message: "not signed by QStash with the configured keys" } }, 401);

/** Decodes base64 as UTF-8 bytes (bare `atob` would garble non-ASCII text). */
const fromBase64 = (b64: string) => new TextDecoder().decode(Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0)));

/** The routes only QStash can call: task deliveries and the failure callback. */
export const deliver = new Hono<AppEnv>()
  .post(DELIVER_PATH, async (c) => {
    const body = await verified(c);
    if (body === null) return unsigned(c);
    const messageId = c.req.header("upstash-message-id") ?? "";
    let message: TaskMessage;
    try {
      message = await toTask(JSON.parse(body), messageId, Date.now());
    } catch (err) {
      // Signed, so it came through QStash, but it is not a celeriac message: never retry it.
      c.header("Upstash-NonRetryable-Error", "true");
      return c.json({ error: { code: "invalid_message", message: messageOf(err) } }, 489 as 400);
    }
    const out = await runDelivery(
      { ...relayOf(c), enqueue: relayOf(c).enqueueFromTask },
      {
        message,
        messageId,
        retried: Number(c.req.header("upstash-retried") ?? 0),
      },
    );
    for (const [k, val] of Object.entries(out.headers)) c.header(k, val);
    return c.json(out.body, out.status as 200);
  })
  .post(FAILURE_PATH, async (c) => {
    const body = await verified(c);
    if (body === null) return unsigned(c);
    const relay = relayOf(c);
    const parsed = v.safeParse(FailureCallback, safeJson(body));
    const cb = parsed.success ? parsed.output : undefined;
    const m = cb && (await toTask(safeJson(fromBase64(cb.sourceBody)), cb.sourceMessageId ?? "", Date.now()).catch(() => undefined));
    if (!cb || !m) {
      return c.json({ error: { code: "invalid_callback", message: "not a failure callback of a celeriac message" } }, 200);
    }
    // QStash gave up on this message. The task has failed unless it is already final or was
    // re-enqueued since (another generation). An attempt still running (a duplicate delivery)
    // may yet finish it: the runner may move a failed task on to its real outcome.
    const error = {
      code: "delivery_failed",
      message: `QStash gave up after ${(cb.retried ?? 0) + 1} attempt(s); last status ${cb.status ?? "none"}${cb.dlqId ? `; dlq id ${cb.dlqId}` : ""}`,
      retryable: false,
    };
    const t = await relay.store.transition(
      m.id,
      {
        from: ["queued", "scheduled", "running", "retrying"],
        to: "failed",
        at: Date.now(),
        gen: m.gen ?? 0,
        error,
        fields: { error: JSON.stringify(error) },
      },
      m.options.resultTtl,
    );
    return c.json({ id: m.id, recorded: t.kind === "ok" });
  });

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}
