import { Hono, type Context } from "hono";
import { messageOf } from "../src/errors.ts";
import { failGivenUp } from "../src/lifecycle.ts";
import { failureOf, taskOf, type TaskMessage } from "../src/messages.ts";
import { DELIVER_PATH, FAILURE_PATH } from "../src/queue.ts";
import { relayOf, type AppEnv } from "../src/relay.ts";
import { runDelivery } from "../src/runner.ts";

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

/** The routes only QStash can call: task deliveries and the failure callback. */
export const deliver = new Hono<AppEnv>()
  .post(DELIVER_PATH, async (c) => {
    const body = await verified(c);
    if (body === null) return unsigned(c);
    const messageId = c.req.header("upstash-message-id") ?? "";
    let message: TaskMessage;
    try {
      message = await taskOf(body, messageId, Date.now());
    } catch (err) {
      // Signed, so it came through QStash, but it is not a celeriac message: never retry it.
      c.header("Upstash-NonRetryable-Error", "true");
      return c.json({ error: { code: "invalid_message", message: messageOf(err) } }, 489 as 400);
    }
    const relay = relayOf(c);
    const out = await runDelivery(
      { ...relay, enqueue: relay.enqueueFromTask },
      { message, messageId, retried: Number(c.req.header("upstash-retried") ?? 0) },
    );
    for (const [k, val] of Object.entries(out.headers)) c.header(k, val);
    return c.json(out.body, out.status as 200);
  })
  .post(FAILURE_PATH, async (c) => {
    const body = await verified(c);
    if (body === null) return unsigned(c);
    const failure = await failureOf(body, Date.now());
    // Acknowledged either way: QStash retrying a callback that is not ours would change nothing.
    if (!failure) return c.json({ error: { code: "invalid_callback", message: "not a failure callback of a celeriac message" } }, 200);
    return c.json({ id: failure.task.id, recorded: await failGivenUp(relayOf(c), failure.task, failure.callback) });
  });
