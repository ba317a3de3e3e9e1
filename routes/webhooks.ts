import { Hono } from "hono";
import { CALLBACK_EVENTS, type CallbackEvent } from "../src/callback-option.ts";
import { notifyCallerOf } from "../src/callbacks.ts";
import { RESEND_WEBHOOK_PATH, receiveResendEvent } from "../src/email-events.ts";
import { readText } from "../src/http.ts";
import { type AppEnv, relayOf } from "../src/relay.ts";

/** Events from providers: Resend's delivery events (Svix-signed). */
export const webhooks = new Hono<AppEnv>().post(RESEND_WEBHOOK_PATH, async (c) => {
  const relay = relayOf(c);
  // The signature covers the exact bytes received, so the body is read raw, never re-serialised.
  const body = await readText(c);
  const headers = { id: c.req.header("svix-id"), timestamp: c.req.header("svix-timestamp"), signature: c.req.header("svix-signature") };
  const outcome = await receiveResendEvent(relay, headers, body, async (taskId, status) => {
    const type = `email.${status}` as CallbackEvent;
    if (CALLBACK_EVENTS.includes(type)) await notifyCallerOf(relay, taskId, type);
  });
  return c.json(outcome);
});
