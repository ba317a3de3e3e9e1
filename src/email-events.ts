import * as v from "valibot";
import { ApiError, messageOf } from "./errors.ts";
import { TASK_ID } from "./ids.ts";
import type { Relay } from "./relay.ts";
import { applyEmailEvent, type DeliveryStatus, type Suppression } from "./store/delivery.ts";
import { verifyWebhook } from "./webhook-signature.ts";

/** Where Resend's delivery events arrive (configure this URL as a webhook in Resend). */
export const RESEND_WEBHOOK_PATH = "/webhooks/resend";
/** The tag `ctx.mail` puts on every email, so its events map back to the task. */
export const TASK_TAG = "celeriac_task";

const STATUS_OF: Record<string, DeliveryStatus> = {
  "email.sent": "sent",
  "email.delivered": "delivered",
  "email.delivery_delayed": "delivery_delayed",
  "email.bounced": "bounced",
  "email.complained": "complained",
};

/** Every Resend event: its type says what the rest holds (contact and domain events exist too). */
const Envelope = v.object({ type: v.string(), data: v.record(v.string(), v.unknown()) });
const Event = v.object({
  type: v.string(),
  created_at: v.optional(v.string()),
  data: v.object({
    email_id: v.string(),
    to: v.optional(v.union([v.string(), v.array(v.string())])),
    tags: v.optional(v.union([v.record(v.string(), v.string()), v.array(v.object({ name: v.string(), value: v.string() }))])),
    bounce: v.optional(v.object({ type: v.optional(v.string()), subType: v.optional(v.string()), message: v.optional(v.string()) })),
  }),
});

/** What a Resend event did, as the webhook route answers it. */
export type EventOutcome = { ignored: string } | { duplicate: true; id: string } | { id: string; status: DeliveryStatus; changed: boolean };

/**
 * Verifies a Resend (Svix) event over its raw body and records it on its task: 401 for a missing,
 * forged or stale signature, 400 for a signed body that is not an event; both change nothing.
 * A replayed event id, an email celeriac did not send and event types it does not track are
 * acknowledged without effect. A changed status is passed to `onChange` (the task's callback).
 */
export async function receiveResendEvent(
  relay: Relay,
  headers: { id?: string; timestamp?: string; signature?: string },
  body: string,
  onChange: (taskId: string, status: DeliveryStatus) => Promise<void>,
): Promise<EventOutcome> {
  const secret = relay.config.resend.webhookSecret;
  if (!secret)
    throw new ApiError(503, {
      code: "misconfigured",
      message: "[celeriac] RESEND_WEBHOOK_SECRET is not set: delivery events cannot be verified",
      retryAfter: 60,
    });
  if (!headers.id || !headers.timestamp || !headers.signature) {
    throw new ApiError(401, { code: "invalid_signature", message: "missing svix-id, svix-timestamp or svix-signature" });
  }
  // Only a secret that is not base64 makes the check throw: that is the configuration's fault.
  const check = await verifyWebhook(secret, headers, body).catch((err) => {
    throw new ApiError(503, { code: "misconfigured", message: `[celeriac] RESEND_WEBHOOK_SECRET: ${messageOf(err)}`, retryAfter: 60 });
  });
  if (!check.ok) {
    if (check.reason === "timestamp")
      throw new ApiError(401, {
        code: "stale_event",
        message: `the event's svix-timestamp is not within 5 minutes of now (${check.message})`,
      });
    throw new ApiError(401, {
      code: "invalid_signature",
      message: `the event is not signed with RESEND_WEBHOOK_SECRET (${check.message})`,
    });
  }
  let event: v.InferOutput<typeof Event>;
  let status: DeliveryStatus | undefined;
  try {
    const raw: unknown = JSON.parse(body);
    status = STATUS_OF[v.parse(Envelope, raw).type];
    if (!status) return { ignored: `event type ${(raw as { type: string }).type} is not tracked` };
    event = v.parse(Event, raw);
  } catch (err) {
    throw new ApiError(400, { code: "invalid_event", message: `not a Resend event of the shape its type promises: ${messageOf(err)}` });
  }
  const tags = event.data.tags ?? {};
  const taskId = Array.isArray(tags) ? tags.find((t) => t.name === TASK_TAG)?.value : tags[TASK_TAG];
  if (!taskId || !TASK_ID.test(taskId)) return { ignored: "the email was not sent by a celeriac task" };

  const at =
    event.created_at && !Number.isNaN(Date.parse(event.created_at)) ? new Date(event.created_at).toISOString() : new Date().toISOString();
  const emailId = event.data.email_id;
  const bounce = event.data.bounce;
  // A hard bounce or a complaint: never mail these recipients again (soft bounces may recover).
  const suppress =
    status === "complained" || (status === "bounced" && (bounce?.type ?? "Permanent") === "Permanent")
      ? recipients(event.data.to).map((address): Suppression => ({ address, reason: status, at, taskId, emailId }))
      : [];
  const applied = await applyEmailEvent(relay.store, {
    eventId: headers.id,
    taskId,
    entry: { status, at, emailId, ...(bounce ? { bounce } : {}) },
    suppress,
  });
  if (applied.kind === "unknown") return { ignored: `no task ${taskId} (expired, or never enqueued here)` };
  // A replay re-offers what the first delivery changed: telling the caller is idempotent, and this
  // way an answer lost after the change still gets the caller told.
  if (applied.changed) await onChange(taskId, applied.changed);
  if (applied.kind === "dup") return { duplicate: true, id: taskId };
  return { id: taskId, status, changed: applied.changed !== undefined };
}

/** Bare, lower-cased addresses from `to` (`a@b.co` or `Name <a@b.co>`). */
function recipients(to: string | string[] | undefined): string[] {
  const list = to === undefined ? [] : Array.isArray(to) ? to : [to];
  return list.map((raw) => (/<([^<>]+)>/.exec(raw)?.[1] ?? raw).trim().toLowerCase()).filter((a) => a.includes("@"));
}
