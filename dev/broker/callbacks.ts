/** Bodies of Upstash-Callback / Upstash-Failure-Callback messages (absent fields omitted). */
import { type AttemptResult, isResponse } from "./outbound.ts";
import type { StoredMessage } from "./types.ts";

export function callbackBody(msg: StoredMessage, result: AttemptResult, retried: number, dlqId?: string): Buffer {
  const body: Record<string, unknown> = {};
  if (isResponse(result)) {
    body.status = result.status;
    body.header = result.header;
    body.body = result.body.toString("base64");
  } else {
    body.error = result.error;
  }
  body.retried = retried;
  body.maxRetries = msg.maxRetries;
  body.sourceMessageId = msg.messageId;
  body.url = msg.url;
  body.method = msg.method;
  body.sourceHeader = msg.header;
  body.sourceBody = msg.body.toString("base64");
  if (msg.notBefore !== undefined) body.notBefore = msg.notBefore;
  body.createdAt = msg.createdAt;
  if (msg.scheduleId) body.scheduleId = msg.scheduleId;
  if (msg.queueName) body.queueName = msg.queueName;
  if (msg.callerIp) body.callerIP = msg.callerIp;
  if (dlqId) body.dlqId = dlqId;
  return Buffer.from(JSON.stringify(body));
}
