/** Shapes shared by the broker's modules. All times are unix milliseconds unless named otherwise. */

export type HeaderMap = Record<string, string[]>;

export type MessageState = "CREATED" | "ACTIVE" | "RETRY" | "DELIVERED" | "FAILED" | "CANCEL_REQUESTED" | "CANCELLED";

export interface FlowControl {
  key: string;
  parallelism?: number;
  rate?: number;
  /** Rate period in seconds (QStash reports it in seconds). */
  period?: number;
}

/** Everything a publish request (or a schedule, or a batch item) says about a message. */
export interface MessageSpec {
  url: string;
  method: string;
  /** Headers delivered to the destination (prefix already stripped), Go-canonical names. */
  header: HeaderMap;
  body: Buffer;
  maxRetries: number;
  retryDelay?: string;
  /** Per-attempt timeout in real milliseconds. */
  timeoutMs?: number;
  callback?: string;
  failureCallback?: string;
  callbackHeader?: HeaderMap;
  failureCallbackHeader?: HeaderMap;
  /** Unscaled delay requested by the publisher. */
  delayMs?: number;
  /** Unscaled absolute not-before (ms) requested by the publisher; wins over delayMs. */
  notBefore?: number;
  flowControl?: FlowControl;
  labels?: string[];
  queueName?: string;
  deduplicationId?: string;
  contentBasedDeduplication?: boolean;
  callerIp?: string;
}

export interface StoredMessage extends MessageSpec {
  messageId: string;
  /** Monotonic creation order; keeps FIFO order across restarts. */
  seq: number;
  createdAt: number;
  state: MessageState;
  /** Failed attempts retried so far; the next attempt carries it as Upstash-Retried. */
  retried: number;
  attempts: number;
  /** Real (scaled) time of the next attempt. */
  nextAttemptAt: number;
  scheduleId?: string;
  /** Set on messages that are themselves callbacks: they never trigger callbacks. */
  callbackOf?: string;
  cancelRequested?: boolean;
}

export interface DlqEntry {
  dlqId: string;
  message: StoredMessage;
  failedAt: number;
  responseStatus?: number;
  responseHeader?: HeaderMap;
  responseBody?: Buffer;
  error?: string;
}

export interface ScheduleRecord {
  scheduleId: string;
  cron: string;
  spec: MessageSpec;
  createdAt: number;
  isPaused: boolean;
  lastScheduleTime?: number;
  nextScheduleTime?: number;
}

export interface QueueRecord {
  name: string;
  parallelism: number;
  paused: boolean;
  createdAt: number;
  updatedAt: number;
}

export interface LogEvent {
  time: number;
  state: MessageState | "ERROR";
  messageId: string;
  url: string;
  queueName?: string;
  scheduleId?: string;
  labels?: string[];
  nextDeliveryTime?: number;
  error?: string;
  responseStatus?: number;
  header?: HeaderMap;
  body?: string;
}
