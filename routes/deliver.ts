import { Hono } from "hono";
import { failGivenUpFlush, runFlush } from "../src/batch.ts";
import { ApiError, messageOf } from "../src/errors.ts";
import { giveUp } from "../src/lifecycle.ts";
import { type FlushMessage, failureOf, flushFailureOf, flushOf, type TaskMessage, taskOf } from "../src/messages.ts";
import { DELIVER_PATH, FAILURE_PATH, FLUSH_PATH } from "../src/queue.ts";
import { type AppEnv, relayOf } from "../src/relay.ts";
import { runDelivery } from "../src/runner.ts";

/** The routes only QStash can call (its signature is checked by the app): deliveries, batch flushes and the failure callback. */
export const deliver = new Hono<AppEnv>()
  .post(DELIVER_PATH, async (c) => {
    const messageId = c.req.header("upstash-message-id") ?? "";
    let message: TaskMessage;
    try {
      message = await taskOf(c.get("body"), messageId, Date.now());
    } catch (err) {
      // Signed, so it came through QStash, but it is not a celeriac message: never retry it.
      c.header("Upstash-NonRetryable-Error", "true");
      return c.json({ error: { code: "invalid_message", message: messageOf(err) } }, 489 as 400);
    }
    const relay = relayOf(c);
    // A scheduled run's id comes from the unsigned message id (QStash signs nothing that is
    // stable across a firing's retries), so the token that vouches for it may start one delivery
    // only: the same signed request replayed under another message id is refused. QStash signs
    // every attempt afresh, so its own retries and duplicates are never refused by this.
    const { jti, exp } = c.get("claims");
    if (message.scheduleId && !(await relay.store.spendToken(jti, exp))) {
      throw new ApiError(401, { code: "replayed_signature", message: "this signature was already used for a delivery" });
    }
    const out = await runDelivery(relay, { message, messageId, retried: Number(c.req.header("upstash-retried") ?? 0) });
    for (const [k, val] of Object.entries(out.headers)) c.header(k, val);
    return c.json(out.body, out.status as 200);
  })
  .post(FLUSH_PATH, async (c) => {
    let message: FlushMessage;
    try {
      message = flushOf(c.get("body"));
    } catch (err) {
      c.header("Upstash-NonRetryable-Error", "true");
      return c.json({ error: { code: "invalid_message", message: messageOf(err) } }, 489 as 400);
    }
    const messageId = c.req.header("upstash-message-id") ?? "";
    const out = await runFlush(relayOf(c), { message, messageId, retried: Number(c.req.header("upstash-retried") ?? 0) });
    for (const [k, val] of Object.entries(out.headers)) c.header(k, val);
    return c.json(out.body, out.status as 200);
  })
  .post(FAILURE_PATH, async (c) => {
    const flush = flushFailureOf(c.get("body"));
    if (flush) {
      const did = await failGivenUpFlush(relayOf(c), flush.flush, flush.callback);
      return c.json({ flush: flush.flush.flush, failed: did.failed, ...(did.rechecking ? { rechecking: true } : {}) });
    }
    const failure = await failureOf(c.get("body"), Date.now());
    // Acknowledged either way: QStash retrying a callback that is not ours would change nothing.
    if (!failure) return c.json({ error: { code: "invalid_callback", message: "not a failure callback of a celeriac message" } }, 200);
    const did = await giveUp(relayOf(c), failure.task, failure.callback);
    return c.json({ id: failure.task.id, recorded: did === "failed", ...(did === "rechecking" ? { rechecking: true } : {}) });
  });
