/** JSON shapes the official client parses: messages, DLQ entries, events, queues. */
import type { DlqEntry, LogEvent, QueueRecord, StoredMessage } from "./types.ts";

function utf8OrBase64(buf: Buffer, textKey: string, b64Key: string, out: Record<string, unknown>): void {
  const text = buf.toString("utf8");
  if (Buffer.from(text, "utf8").equals(buf)) out[textKey] = text;
  else out[b64Key] = buf.toString("base64");
}

/** Adds the flow-control fields and labels that messages and schedules report alike. */
export function flowControlAndLabels(src: Pick<StoredMessage, "flowControl" | "labels">, out: Record<string, unknown>): void {
  if (src.flowControl) {
    out.flowControlKey = src.flowControl.key;
    if (src.flowControl.parallelism !== undefined) out.parallelism = src.flowControl.parallelism;
    if (src.flowControl.rate !== undefined) out.rate = src.flowControl.rate;
    if (src.flowControl.period !== undefined) out.period = src.flowControl.period;
  }
  if (src.labels) {
    out.labels = src.labels;
    out.label = src.labels[0];
  }
}

export function messageJson(m: StoredMessage): Record<string, unknown> {
  const out: Record<string, unknown> = {
    messageId: m.messageId,
    url: m.url,
    method: m.method,
    header: m.header,
    maxRetries: m.maxRetries,
    createdAt: m.createdAt,
    state: m.state,
    retried: m.retried,
  };
  utf8OrBase64(m.body, "body", "bodyBase64", out);
  if (m.retryDelay) out.retryDelayExpression = m.retryDelay;
  if (m.notBefore !== undefined) out.notBefore = m.notBefore;
  else if (m.delayMs !== undefined) out.notBefore = m.createdAt + m.delayMs;
  if (m.callback) out.callback = m.callback;
  if (m.failureCallback) out.failureCallback = m.failureCallback;
  if (m.queueName) out.queueName = m.queueName;
  if (m.scheduleId) out.scheduleId = m.scheduleId;
  if (m.callerIp) out.callerIp = m.callerIp;
  flowControlAndLabels(m, out);
  return out;
}

export function dlqJson(e: DlqEntry): Record<string, unknown> {
  const out = messageJson(e.message);
  out.dlqId = e.dlqId;
  out.state = "FAILED";
  if (e.responseStatus !== undefined) out.responseStatus = e.responseStatus;
  if (e.responseHeader) out.responseHeader = e.responseHeader;
  if (e.responseBody) utf8OrBase64(e.responseBody, "responseBody", "responseBodyBase64", out);
  if (e.error) out.error = e.error;
  return out;
}

export function eventJson(e: LogEvent): Record<string, unknown> {
  const out: Record<string, unknown> = { ...e };
  delete out.seq;
  if (e.labels) out.label = e.labels[0];
  return out;
}

export function queueJson(q: QueueRecord, lag: number): Record<string, unknown> {
  return {
    name: q.name,
    parallelism: q.parallelism,
    paused: q.paused,
    lag,
    createdAt: q.createdAt,
    updatedAt: q.updatedAt,
  };
}
