// JSON Schemas (2020-12, as OpenAPI 3.1 uses) of what celeriac's routes answer. The task payloads
// are not here: src/openapi.ts derives each from its task's valibot schema. test/openapi.test.ts
// checks real answers against these, so they cannot drift from the TypeScript types.
import { TASK_STATES } from "./store/record.ts";

const str = { type: "string" } as const;
const time = { type: "string", format: "date-time" } as const;
const int = { type: "integer", minimum: 0 } as const;

const Issue = { type: "object", required: ["path", "message"], properties: { path: str, message: str } };
const TaskError = {
  type: "object",
  required: ["code", "message", "retryable"],
  properties: { code: str, message: str, retryable: { type: "boolean" } },
};
const state = { type: "string", enum: [...TASK_STATES] };

export const SCHEMAS = {
  Error: {
    type: "object",
    description: "celeriac's error envelope; some answers add fields beside `error` (e.g. `id`, `state`).",
    required: ["error"],
    properties: {
      error: {
        type: "object",
        required: ["code", "message"],
        properties: { code: str, message: str, issues: { type: "array", items: Issue } },
      },
    },
  },
  EnqueueOptions: {
    type: "object",
    properties: {
      delay: { description: 'Seconds, or a duration such as "90s" or "1h30m".', oneOf: [{ type: "number", minimum: 0 }, str] },
      notBefore: { description: "Unix seconds or an ISO 8601 date; wins over `delay`.", oneOf: [{ type: "number" }, str] },
      retries: { type: "integer", minimum: 0, maximum: 20 },
      timeout: { description: "Seconds or a duration.", oneOf: [{ type: "number", minimum: 1 }, str] },
      retryDelay: {
        description: "Seconds, an Upstash-Retry-Delay expression, or { base, factor, max }.",
        oneOf: [{ type: "number" }, str, { type: "object" }],
      },
      idempotencyKey: { type: "string", minLength: 1, maxLength: 256 },
      resultTtl: {
        description: "How long the finished record is kept: seconds or a duration (at least 60 s).",
        oneOf: [{ type: "number", minimum: 60 }, str],
      },
      callback: {
        description: "A URL (or `{ url, events? }`) that gets a signed event when the task ends.",
        oneOf: [str, { type: "object" }],
      },
      redact: {
        description: "Payload paths (`headers.*`, `body.json.code`) kept out of the record and every answer.",
        type: "array",
        items: str,
        maxItems: 20,
      },
    },
  },
  Enqueued: {
    type: "object",
    required: ["id", "task", "state", "runAt", "createdAt", "duplicate", "messageId"],
    properties: {
      id: str,
      task: str,
      state,
      runAt: time,
      createdAt: time,
      duplicate: { type: "boolean" },
      messageId: str,
      idempotencyKey: str,
    },
  },
  TaskRecord: {
    type: "object",
    required: ["id", "task", "state", "attempts", "payload", "options", "createdAt", "runAt", "history"],
    properties: {
      id: str,
      task: str,
      state,
      attempts: int,
      payload: {},
      options: {
        type: "object",
        required: ["retries", "timeout", "resultTtl"],
        properties: { retries: int, timeout: int, resultTtl: int, retryDelay: str },
      },
      createdAt: time,
      runAt: time,
      startedAt: time,
      nextAttemptAt: time,
      finishedAt: time,
      result: {},
      error: TaskError,
      messageId: str,
      idempotencyKey: str,
      scheduleId: str,
      leaseUntil: time,
      redacted: { type: "array", items: str },
      callback: { type: "object", description: "Where the caller asked to hear how it went." },
      callbacks: { type: "array", items: { type: "object" }, description: "The callbacks sent so far." },
      delivery: { type: "object", description: "For a task that sent email: what Resend's events said." },
      dlqId: str,
      discardedAt: time,
      generation: int,
      history: {
        type: "array",
        items: { type: "object", required: ["at", "state"], properties: { at: time, state, attempt: int, error: TaskError } },
      },
    },
  },
  TaskList: {
    type: "object",
    required: ["tasks"],
    properties: { tasks: { type: "array", items: { $ref: "#/components/schemas/TaskRecord" } }, cursor: str },
  },
  Json: { description: "A JSON document; see the route's description." },
} as const;
