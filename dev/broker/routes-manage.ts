/** Messages (get, cancel), DLQ (list, delete, retry), events/logs and keys. */
import { type Core, type Ctx, fail, many, ok, page, type Reply } from "./core.ts";
import type { DlqEntry, MessageSpec, StoredMessage } from "./types.ts";
import { dlqJson, eventJson, messageJson } from "./views.ts";

/** Filters shared by bulk cancel and the DLQ (multi-value = OR, fields = AND). */
function matches(m: StoredMessage, q: URLSearchParams): boolean {
  const anyOf = (name: string, value: string | undefined) => {
    const wanted = many(q, name);
    return wanted.length === 0 || (value !== undefined && wanted.includes(value));
  };
  let host: string | undefined;
  let path: string | undefined;
  try {
    const u = new URL(m.url);
    host = u.host;
    path = u.pathname;
  } catch {}
  const from = Number(q.get("fromDate")) || 0;
  const to = Number(q.get("toDate")) || Number.POSITIVE_INFINITY;
  return (
    anyOf("url", m.url) &&
    anyOf("queueName", m.queueName) &&
    anyOf("scheduleId", m.scheduleId) &&
    anyOf("flowControlKey", m.flowControl?.key) &&
    anyOf("callerIp", m.callerIp) &&
    anyOf("host", host) &&
    anyOf("path", path) &&
    (many(q, "label").length === 0 || (m.labels ?? []).some((l) => many(q, "label").includes(l))) &&
    m.createdAt >= from &&
    m.createdAt <= to
  );
}

export function getMessage(core: Core, id: string): Reply {
  const m = core.store.messages.get(id);
  return m ? ok(messageJson(m)) : fail(404, `message ${id} not found`);
}

export function cancelMessage(core: Core, id: string): Reply {
  const m = core.store.messages.get(id);
  if (!m) return fail(404, `message ${id} not found`);
  core.dispatcher.cancel(m);
  return ok({ cancelled: 1 });
}

export function cancelMany(core: Core, ctx: Ctx): Reply {
  let ids = many(ctx.query, "messageIds");
  if (ids.length === 0 && ctx.body.length) {
    try {
      const parsed = JSON.parse(ctx.body.toString("utf8")) as { messageIds?: unknown };
      if (Array.isArray(parsed.messageIds)) ids = parsed.messageIds.map(String);
    } catch {}
  }
  const targets = ids.length
    ? ids.map((id) => core.store.messages.get(id)).filter((m): m is StoredMessage => !!m)
    : [...core.store.messages.values()].filter((m) => !m.callbackOf && matches(m, ctx.query));
  for (const m of targets) core.dispatcher.cancel(m);
  return ok({ cancelled: targets.length });
}

function dlqSelection(core: Core, q: URLSearchParams): DlqEntry[] {
  const ids = many(q, "dlqIds");
  const entries = [...core.store.dlq.values()];
  if (ids.length) return entries.filter((e) => ids.includes(e.dlqId));
  const statuses = many(q, "responseStatus").map(Number);
  const messageId = q.get("messageId");
  return entries.filter(
    (e) =>
      matches(e.message, q) &&
      (!messageId || e.message.messageId === messageId) &&
      (statuses.length === 0 || (e.responseStatus !== undefined && statuses.includes(e.responseStatus))),
  );
}

export function listDlq(core: Core, ctx: Ctx): Reply {
  const { slice, cursor } = page(dlqSelection(core, ctx.query), ctx.query);
  return ok({ messages: slice.map(dlqJson), ...(cursor ? { cursor } : {}) });
}

export function getDlq(core: Core, id: string): Reply {
  const e = core.store.dlq.get(id);
  return e ? ok(dlqJson(e)) : fail(404, `dlq message ${id} not found`);
}

export function deleteDlq(core: Core, ctx: Ctx, id?: string): Reply {
  if (id) {
    if (!core.store.dlq.delete(id)) return fail(404, `dlq message ${id} not found`);
    core.store.changed();
    return ok({ deleted: 1 });
  }
  const { slice, cursor } = page(dlqSelection(core, ctx.query), ctx.query);
  for (const e of slice) core.store.dlq.delete(e.dlqId);
  core.store.changed();
  return ok({ deleted: slice.length, ...(cursor ? { cursor: "0" } : {}) });
}

/** Republishes DLQ entries as new messages (fresh id and retry budget, due now). */
export function retryDlq(core: Core, ctx: Ctx, id?: string): Reply {
  let entries: DlqEntry[];
  let cursor: string | undefined;
  if (id) {
    const e = core.store.dlq.get(id);
    if (!e) return fail(404, `dlq message ${id} not found`);
    entries = [e];
  } else {
    const p = page(dlqSelection(core, ctx.query), ctx.query);
    entries = p.slice;
    if (p.cursor) cursor = "0";
  }
  const responses = entries.map((e) => {
    core.store.dlq.delete(e.dlqId);
    const m = e.message;
    const spec: MessageSpec = { ...m };
    delete spec.delayMs;
    delete spec.notBefore;
    for (const k of ["messageId", "seq", "createdAt", "state", "retried", "attempts", "nextAttemptAt", "cancelRequested"]) {
      delete (spec as unknown as Record<string, unknown>)[k];
    }
    const extra = m.scheduleId ? { scheduleId: m.scheduleId } : {};
    return { messageId: core.dispatcher.create(spec, extra).messageId };
  });
  core.store.changed();
  return ok({ responses, ...(cursor ? { cursor } : {}) });
}

/** GET /v2/events → {events}; GET /v2/logs → {logs}. Newest first, cursor = older-than seq. */
export function listEvents(core: Core, ctx: Ctx, key: "events" | "logs"): Reply {
  const q = ctx.query;
  const ids = [...many(q, "messageIds"), ...many(q, "messageId")];
  const state = q.get("state");
  const urls = many(q, "url");
  const labels = many(q, "label");
  const queues = many(q, "queueName");
  const schedules = many(q, "scheduleId");
  const from = Number(q.get("fromDate")) || 0;
  const to = Number(q.get("toDate")) || Number.POSITIVE_INFINITY;
  const count = Math.max(1, Math.min(1000, Number(q.get("count")) || 100));
  const before = Number(q.get("cursor")) || Number.POSITIVE_INFINITY;
  const out: unknown[] = [];
  let nextCursor: string | undefined;
  const events = core.store.events;
  for (let i = events.length - 1; i >= 0; i--) {
    const e = events[i];
    if (!e || e.seq >= before) continue;
    if (ids.length && !ids.includes(e.messageId)) continue;
    if (state && e.state !== state) continue;
    if (urls.length && !urls.includes(e.url)) continue;
    if (labels.length && !(e.labels ?? []).some((l) => labels.includes(l))) continue;
    if (queues.length && (!e.queueName || !queues.includes(e.queueName))) continue;
    if (schedules.length && (!e.scheduleId || !schedules.includes(e.scheduleId))) continue;
    if (e.time < from || e.time > to) continue;
    if (out.length === count) {
      nextCursor = String(e.seq + 1);
      break;
    }
    out.push(eventJson(e));
  }
  return ok({ [key]: out, ...(nextCursor ? { cursor: nextCursor } : {}) });
}
