/**
 * Delivery: timers for due messages, signed attempts, outcomes (success, retry with backoff or
 * Retry-After, DLQ), callbacks. Every wait is multiplied by timeScale; attempt timeouts are real.
 */
import { callbackBody } from "./callbacks.ts";
import { defaultBackoffMs, formatWait, parseRetryAfter } from "./durations.ts";
import { Lanes } from "./lanes.ts";
import { type AttemptResult, isResponse, Outbound } from "./outbound.ts";
import { retryDelayMs } from "./retry-expr.ts";
import { signDelivery } from "./signing.ts";
import { newId, type Store } from "./store.ts";
import type { LogEvent, MessageSpec, MessageState, StoredMessage } from "./types.ts";

const DEFAULT_TIMEOUT_MS = 30_000;
const MAX_TIMER_MS = 2_000_000_000;

export interface DispatcherOptions {
  store: Store;
  timeScale: number;
  signingKey: () => string;
  log: (line: string) => void;
}

export class Dispatcher {
  private store: Store;
  private timeScale: number;
  private signingKey: () => string;
  private log: (line: string) => void;
  private timers = new Map<string, NodeJS.Timeout>();
  private out = new Outbound();
  private closed = false;
  lanes: Lanes;

  constructor(opts: DispatcherOptions) {
    this.store = opts.store;
    this.timeScale = opts.timeScale;
    this.signingKey = opts.signingKey;
    this.log = opts.log;
    this.lanes = new Lanes({
      getQueue: (name) => this.store.queues.get(name),
      launch: (msg) => void this.attempt(msg),
      timeScale: opts.timeScale,
    });
  }

  /** Real milliseconds for a requested wait. */
  scaled(ms: number): number {
    return Math.max(0, ms) * this.timeScale;
  }

  /** Creates and schedules a message from a spec. */
  create(spec: MessageSpec, extra: { scheduleId?: string; callbackOf?: string } = {}): StoredMessage {
    const now = Date.now();
    let due = now;
    if (spec.notBefore !== undefined) due = now + this.scaled(spec.notBefore - now);
    else if (spec.delayMs !== undefined) due = now + this.scaled(spec.delayMs);
    if (spec.queueName && !this.store.queues.has(spec.queueName)) {
      this.store.queues.set(spec.queueName, {
        name: spec.queueName,
        parallelism: 1,
        paused: false,
        createdAt: now,
        updatedAt: now,
      });
    }
    const msg: StoredMessage = {
      ...spec,
      messageId: newId("msg"),
      seq: this.store.seq++,
      createdAt: now,
      state: "CREATED",
      retried: 0,
      attempts: 0,
      nextAttemptAt: due,
      ...extra,
    };
    this.store.messages.set(msg.messageId, msg);
    this.event(msg, "CREATED", due > now ? { nextDeliveryTime: due } : {});
    this.schedule(msg);
    this.store.changed();
    return msg;
  }

  /** Re-arms timers for messages loaded from disk, in creation order (keeps FIFO queues). */
  resume(): void {
    const pending = [...this.store.messages.values()].sort((a, b) => a.seq - b.seq);
    for (const msg of pending) {
      if (msg.state === "ACTIVE") msg.state = "RETRY";
      this.schedule(msg);
    }
  }

  private schedule(msg: StoredMessage): void {
    const wait = msg.nextAttemptAt - Date.now();
    if (wait <= 0) {
      this.lanes.admit(msg);
      return;
    }
    // setTimeout overflows past ~24.8 days; long waits re-arm in steps.
    const timer = setTimeout(
      () => {
        this.timers.delete(msg.messageId);
        if (msg.nextAttemptAt > Date.now()) this.schedule(msg);
        else this.lanes.admit(msg);
      },
      Math.min(wait, MAX_TIMER_MS),
    );
    this.timers.set(msg.messageId, timer);
  }

  private event(msg: StoredMessage, state: LogEvent["state"], extra: Partial<LogEvent> = {}): void {
    const e: LogEvent = { time: Date.now(), state, messageId: msg.messageId, url: msg.url, ...extra };
    if (msg.queueName) e.queueName = msg.queueName;
    if (msg.scheduleId) e.scheduleId = msg.scheduleId;
    if (msg.labels) e.labels = msg.labels;
    if (state === "CREATED") {
      e.header = msg.header;
      e.body = msg.body.toString("base64");
    }
    this.store.event(e);
  }

  private headersFor(msg: StoredMessage, retried: number): Record<string, string | string[]> {
    const h: Record<string, string | string[]> = { ...msg.header };
    h["User-Agent"] = "Upstash-QStash";
    h["Upstash-Message-Id"] = msg.messageId;
    h["Upstash-Retried"] = String(retried);
    if (msg.scheduleId) h["Upstash-Schedule-Id"] = msg.scheduleId;
    if (msg.callerIp) h["Upstash-Caller-Ip"] = msg.callerIp;
    h["Upstash-Signature"] = signDelivery(this.signingKey(), msg.url, msg.body);
    return h;
  }

  private send(msg: StoredMessage, retried: number): Promise<AttemptResult> {
    const headers = this.headersFor(msg, retried);
    return this.out.send(msg.url, msg.method, headers, msg.body, msg.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  }

  private async attempt(msg: StoredMessage): Promise<void> {
    if (this.closed || !this.store.messages.has(msg.messageId)) return;
    const retried = msg.retried;
    msg.state = "ACTIVE";
    msg.attempts++;
    this.event(msg, "ACTIVE");
    const result = await this.send(msg, retried);
    if (this.closed) return;
    const ok = isResponse(result) && result.status >= 200 && result.status < 300;
    const what = isResponse(result) ? `${result.status}` : result.error;
    const prefix = `${msg.messageId} ${msg.method} ${msg.url} → ${what} in ${Math.round(result.latencyMs)}ms`;
    if (ok) {
      this.log(`${prefix}${retried ? ` (retry ${retried}/${msg.maxRetries})` : ""}`);
      this.finish(msg, "DELIVERED");
      this.event(msg, "DELIVERED", { responseStatus: result.status });
      this.fireCallback(msg, result, retried);
      return;
    }
    const errorText = isResponse(result) ? `status ${result.status}: ${result.body.toString("utf8", 0, 200)}` : what;
    this.event(msg, "ERROR", { error: errorText, ...(isResponse(result) ? { responseStatus: result.status } : {}) });
    const nonRetryable =
      isResponse(result) && result.status === 489 && result.header["Upstash-Nonretryable-Error"]?.[0]?.toLowerCase() === "true";
    if (msg.cancelRequested) {
      this.log(`${prefix}, cancelled`);
      this.finish(msg, "CANCELLED");
      this.event(msg, "CANCELLED");
    } else if (nonRetryable || msg.retried >= msg.maxRetries) {
      this.log(`${prefix}${nonRetryable ? " non-retryable" : ""} → DLQ`);
      this.finish(msg, "FAILED");
      this.event(msg, "FAILED", { error: errorText });
      const dlqId = this.toDlq(msg, result);
      this.fireCallback(msg, result, retried);
      this.fireFailureCallback(msg, result, retried, dlqId);
      return;
    } else {
      msg.retried++;
      const wait = this.scaled(this.backoffMs(msg, result));
      msg.nextAttemptAt = Date.now() + wait;
      msg.state = "RETRY";
      this.log(`${prefix}, retry ${msg.retried}/${msg.maxRetries} in ${formatWait(wait)}`);
      this.event(msg, "RETRY", { nextDeliveryTime: msg.nextAttemptAt });
      this.lanes.release(msg, false);
      this.schedule(msg);
      this.store.changed();
    }
    this.fireCallback(msg, result, retried);
  }

  /** Unscaled wait before the next attempt; msg.retried already counts the coming retry. */
  private backoffMs(msg: StoredMessage, result: AttemptResult): number {
    if (isResponse(result)) {
      const retryAfter = parseRetryAfter(result.header["Retry-After"]?.[0]);
      if (retryAfter !== undefined) return retryAfter;
    }
    if (msg.retryDelay !== undefined) return retryDelayMs(msg.retryDelay, msg.retried - 1);
    return defaultBackoffMs(msg.retried);
  }

  private finish(msg: StoredMessage, state: MessageState): void {
    msg.state = state;
    clearTimeout(this.timers.get(msg.messageId));
    this.timers.delete(msg.messageId);
    this.store.archiveMessage(msg);
    this.lanes.release(msg, true);
    this.store.changed();
  }

  private toDlq(msg: StoredMessage, result: AttemptResult): string {
    const dlqId = this.store.nextDlqId();
    this.store.dlq.set(dlqId, {
      dlqId,
      message: msg,
      failedAt: Date.now(),
      ...(isResponse(result)
        ? { responseStatus: result.status, responseHeader: result.header, responseBody: result.body }
        : { error: result.error }),
    });
    return dlqId;
  }

  private fireCallback(msg: StoredMessage, result: AttemptResult, retried: number): void {
    if (!msg.callback || msg.callbackOf) return;
    this.create(this.callbackSpec(msg, msg.callback, msg.callbackHeader, callbackBody(msg, result, retried)), {
      callbackOf: msg.messageId,
    });
  }

  private fireFailureCallback(msg: StoredMessage, result: AttemptResult, retried: number, dlqId: string): void {
    if (!msg.failureCallback || msg.callbackOf) return;
    const body = callbackBody(msg, result, retried, dlqId);
    this.create(this.callbackSpec(msg, msg.failureCallback, msg.failureCallbackHeader, body), {
      callbackOf: msg.messageId,
    });
  }

  private callbackSpec(msg: StoredMessage, url: string, header: MessageSpec["header"] | undefined, body: Buffer) {
    const spec: MessageSpec = {
      url,
      method: "POST",
      header: { ...header, "Content-Type": ["application/json"] },
      body,
      maxRetries: msg.maxRetries,
    };
    return spec;
  }

  /** Cancels a pending message; an attempt in flight finishes first (then no retry). */
  cancel(msg: StoredMessage): void {
    this.event(msg, "CANCEL_REQUESTED");
    if (msg.state === "ACTIVE") {
      msg.cancelRequested = true;
      return;
    }
    this.lanes.remove(msg);
    this.finish(msg, "CANCELLED");
    this.event(msg, "CANCELLED");
  }

  /** Dev control: N concurrent extra attempts of a message, state untouched. */
  async deliverCopies(msg: StoredMessage, copies: number): Promise<Array<number | null>> {
    const results = await Promise.all(Array.from({ length: copies }, () => this.send(msg, msg.retried)));
    return results.map((r, i) => {
      const what = isResponse(r) ? String(r.status) : r.error;
      this.log(`${msg.messageId} ${msg.method} ${msg.url} → ${what} in ${Math.round(r.latencyMs)}ms (copy ${i + 1}/${copies})`);
      return isResponse(r) ? r.status : null;
    });
  }

  nextAttemptOf(messageId: string): number | undefined {
    return this.timers.has(messageId) ? this.store.messages.get(messageId)?.nextAttemptAt : undefined;
  }

  close(): void {
    this.closed = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    this.lanes.close();
    this.out.close();
  }
}
