/**
 * Dev-only control API under /_broker/ (same Bearer token):
 *   GET  /_broker/state                          messages in flight + DLQ + schedules + queues
 *   POST /_broker/messages/{id}/deliver?copies=N N concurrent signed attempts right now
 *   POST /_broker/schedules/{id}/trigger         fire a schedule once now
 */
import { type Core, type Ctx, fail, ok, type Reply } from "./core.ts";
import { scheduleJson } from "./schedules.ts";

function state(core: Core): Reply {
  const messages = [...core.store.messages.values()].map((m) => ({
    messageId: m.messageId,
    destination: m.url,
    state: m.state,
    attempts: m.attempts,
    retried: m.retried,
    maxRetries: m.maxRetries,
    nextAttemptAt: m.state === "ACTIVE" ? null : m.nextAttemptAt,
    ...(m.queueName ? { queueName: m.queueName } : {}),
    ...(m.flowControl ? { flowControlKey: m.flowControl.key } : {}),
    ...(m.scheduleId ? { scheduleId: m.scheduleId } : {}),
    ...(m.callbackOf ? { callbackOf: m.callbackOf } : {}),
  }));
  const dlq = [...core.store.dlq.values()].map((e) => ({
    dlqId: e.dlqId,
    messageId: e.message.messageId,
    destination: e.message.url,
    attempts: e.message.attempts,
    failedAt: e.failedAt,
    ...(e.responseStatus !== undefined ? { responseStatus: e.responseStatus } : {}),
    ...(e.error ? { error: e.error } : {}),
  }));
  return ok({
    now: Date.now(),
    timeScale: core.timeScale,
    messages,
    dlq,
    schedules: [...core.store.schedules.values()].map(scheduleJson),
    queues: [...core.store.queues.values()],
  });
}

export async function controlRoutes(core: Core, ctx: Ctx, segs: string[]): Promise<Reply | undefined> {
  const [kind, id, action] = segs;
  if (ctx.method === "GET" && kind === "state" && id === undefined) return state(core);
  if (ctx.method !== "POST" || id === undefined) return undefined;
  if (kind === "messages" && action === "deliver") {
    const msg =
      core.store.messages.get(id) ??
      core.store.archive.get(id) ??
      [...core.store.dlq.values()].find((e) => e.message.messageId === id)?.message;
    if (!msg) return fail(404, `message ${id} not found`);
    const copies = Number(ctx.query.get("copies") ?? "1");
    if (!Number.isInteger(copies) || copies < 1 || copies > 100) return fail(400, "copies must be an integer 1..100");
    return ok({ messageId: id, statuses: await core.dispatcher.deliverCopies(msg, copies) });
  }
  if (kind === "schedules" && action === "trigger") {
    const msg = core.scheduler.trigger(id);
    return msg ? ok({ scheduleId: id, messageId: msg.messageId }) : fail(404, `schedule ${id} not found`);
  }
  return undefined;
}
