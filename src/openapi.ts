// The OpenAPI 3.1 document of one app: its routes, and each registered task's payload schema
// derived from the task's valibot schema. Served at /openapi.json; /docs renders it.
import { ERROR_CODES } from "./error-codes.ts";
import { browser, byId, CHECK, checked, common, error, json, path, query, record, ref } from "./openapi-parts.ts";
import { SCHEMAS } from "./openapi-schemas.ts";
import { enqueueOperation, payloadSchema, payloadSchemaName, publicOperation } from "./openapi-tasks.ts";
import type { AnyTask } from "./registry.ts";

export { payloadSchema, payloadSchemaName } from "./openapi-tasks.ts";

/** The OpenAPI 3.1 document for these tasks, served from `origin`; internal tasks are not callers' to enqueue. */
export function openApiDocument(all: readonly AnyTask[], origin: string) {
  const tasks = all.filter((t) => !t.internal);
  const payloads = Object.fromEntries(tasks.map((t) => [payloadSchemaName(t.name), payloadSchema(t)]));
  const batchItem = {
    oneOf: tasks.map((t) => ({
      type: "object",
      required: ["task", "payload"],
      properties: { task: { const: t.name }, payload: ref(payloadSchemaName(t.name)), ...SCHEMAS.EnqueueOptions.properties },
    })),
  };
  const errorTable = Object.entries(ERROR_CODES)
    .map(([code, e]) => `| \`${code}\` | ${e.status} | ${e.meaning} |`)
    .join("\n");
  return {
    openapi: "3.1.0",
    info: {
      title: "celeriac",
      version: "1",
      description: `Celery for the edge: enqueue tasks over HTTP, QStash delivers them, Redis keeps their state.\n\n| code | status | meaning |\n| --- | --- | --- |\n${errorTable}`,
    },
    servers: [{ url: origin }],
    security: [{ apiKey: [] }],
    tags: [
      { name: "tasks", description: "Enqueue tasks and follow them" },
      { name: "browsers", description: "Public tasks and the verification-code pair, called from pages without a key" },
      { name: "dead letters", description: "Failed tasks: list, replay, discard" },
      { name: "schedules", description: "Cron schedules declared by the tasks" },
      { name: "stats", description: "Counters and daily reports" },
      { name: "meta", description: "Health and this document" },
    ],
    paths: {
      ...Object.fromEntries(tasks.map((t) => [`/v1/tasks/${t.name}`, enqueueOperation(t)])),
      "/v1/tasks": {
        post: {
          operationId: "enqueue_many",
          tags: ["tasks"],
          summary: "Enqueue up to 100 tasks: all, or none when one is invalid",
          requestBody: {
            required: true,
            content: {
              "application/json": {
                schema: {
                  type: "object",
                  required: ["tasks"],
                  properties: { tasks: { type: "array", minItems: 1, maxItems: 100, items: batchItem } },
                },
              },
            },
          },
          responses: {
            202: json(
              { type: "object", required: ["tasks"], properties: { tasks: { type: "array", items: ref("Enqueued") } } },
              "Enqueued, in order",
            ),
            415: error("The body is not sent as JSON"),
            422: error("An entry is invalid (`invalid_batch`, issues by index); nothing was enqueued"),
            ...common,
          },
        },
        get: {
          operationId: "list_tasks",
          tags: ["tasks"],
          summary: "List task records, newest first",
          parameters: [
            query("state", "Only tasks in this state", { type: "string", enum: SCHEMAS.TaskRecord.properties.state.enum }),
            query("task", "Only tasks of this type", { type: "string", enum: tasks.map((t) => t.name) }),
            query("limit", "Page size", { type: "integer", minimum: 1, maximum: 100, default: 20 }),
            query("cursor", "The `cursor` of the previous page"),
          ],
          responses: { 200: json(ref("TaskList"), "A page of records"), 404: error("No task type of this name"), ...common },
        },
      },
      "/v1/tasks/{id}": {
        get: {
          operationId: "get_task",
          tags: ["tasks"],
          summary: "A task's state, attempts, result and history",
          parameters: byId,
          responses: record("The record"),
        },
        delete: {
          operationId: "cancel_task",
          tags: ["tasks"],
          summary: "Cancel a task that has not started",
          parameters: byId,
          responses: { ...record("The cancelled record"), 409: error("The task already started or ended (`not_cancellable`)") },
        },
      },
      "/v1/tasks/{id}/retry": {
        post: {
          operationId: "retry_task",
          tags: ["tasks"],
          summary: "Run a failed or cancelled task again, same id",
          parameters: byId,
          responses: {
            202: json(ref("TaskRecord"), "Queued again"),
            ...record("(not sent)"),
            409: error("Only failed or cancelled tasks can be retried"),
          },
        },
      },
      ...Object.fromEntries(tasks.filter((t) => t.public).map((t) => [`/v1/public/${t.name}`, publicOperation(t)])),
      "/v1/public/receipts/{receipt}": {
        get: {
          operationId: "read_receipt",
          tags: ["browsers"],
          summary: "The state of the task a receipt names, nothing more (no key)",
          security: [],
          parameters: [path("receipt", "The receipt a public call answered")],
          responses: {
            200: json({ type: "object", required: ["state"], properties: { state: { type: "string" } } }, "The task's state"),
            404: error("Not a receipt celeriac signed (`unknown_receipt`), or the record is gone"),
            410: error("The receipt expired with its task's record (`receipt_expired`)"),
            ...browser("Misconfigured"),
          },
        },
      },
      ...(tasks.some((t) => t.name === "verification" && t.public)
        ? {
            "/v1/public/verification/check": {
              post: {
                operationId: "check_code_public",
                tags: ["browsers"],
                summary: "Turn a verification code into a token, once (no key)",
                security: [],
                requestBody: { required: true, content: { "application/json": { schema: CHECK } } },
                responses: { ...checked("Verified: a signed token for your backend"), ...browser("Misconfigured") },
              },
            },
          }
        : {}),
      "/v1/verification/check": {
        post: {
          operationId: "check_code",
          tags: ["tasks"],
          summary: "Check a verification code from a backend",
          requestBody: { required: true, content: { "application/json": { schema: CHECK } } },
          responses: { ...checked("Verified"), 404: error("No verification task is registered"), ...common },
        },
      },
      "/v1/dead": {
        get: {
          operationId: "list_dead",
          tags: ["dead letters"],
          summary: "Failed tasks QStash gave up on, newest first, with QStash's DLQ copy",
          parameters: [
            query("task", "Only this task type"),
            query("code", "Only this error code"),
            query("since", "Unix seconds or an ISO date"),
            query("cursor", "The previous page's cursor"),
            query("limit", "Page size", { type: "integer", minimum: 1, maximum: 100 }),
          ],
          responses: { 200: json(ref("TaskList"), "A page of dead letters"), 404: error("No task type of this name"), ...common },
        },
      },
      "/v1/dead/replay": {
        post: {
          operationId: "replay_dead",
          tags: ["dead letters"],
          summary: "Replay every dead letter matching `{ filter: { task, code, since }, dryRun }` (each once)",
          requestBody: {
            required: true,
            content: {
              "application/json": { schema: { type: "object", properties: { filter: { type: "object" }, dryRun: { type: "boolean" } } } },
            },
          },
          responses: {
            200: json(ref("Json"), "Dry run: what would be replayed"),
            202: json(ref("Json"), "`{ matched, replayed, skipped, ids }`"),
            ...common,
          },
        },
      },
      "/v1/dead/{id}/replay": {
        post: {
          operationId: "replay_dead_one",
          tags: ["dead letters"],
          summary: "Replay one dead letter under its id",
          parameters: byId,
          responses: {
            202: json(ref("TaskRecord"), "Queued again"),
            ...record("(not sent)"),
            409: error("Not a dead letter (`not_dead`)"),
          },
        },
      },
      "/v1/dead/{id}": {
        delete: {
          operationId: "discard_dead",
          tags: ["dead letters"],
          summary: "Discard a dead letter (the record stays, failed)",
          parameters: byId,
          responses: {
            ...record("(not sent)"),
            200: json(ref("Json"), "`{ id, discarded: true }`"),
            409: error("Not a dead letter (`not_dead`)"),
          },
        },
      },
      "/v1/suppressions": {
        get: {
          operationId: "list_suppressions",
          tags: ["tasks"],
          summary: "Addresses send-email no longer mails (bounced or complained)",
          parameters: [
            query("cursor", "The previous page's cursor"),
            query("limit", "Page size", { type: "integer", minimum: 1, maximum: 100 }),
          ],
          responses: { 200: json(ref("Json"), "A page of suppressed addresses"), ...common },
        },
      },
      "/v1/suppressions/{address}": {
        get: {
          operationId: "get_suppression",
          tags: ["tasks"],
          summary: "Why an address is suppressed",
          parameters: [path("address", "An email address")],
          responses: { 200: json(ref("Json"), "The suppression"), 404: error("Not suppressed"), ...common },
        },
        delete: {
          operationId: "delete_suppression",
          tags: ["tasks"],
          summary: "Mail an address again",
          parameters: [path("address", "An email address")],
          responses: { 200: json(ref("Json"), "Removed"), 404: error("Not suppressed"), ...common },
        },
      },
      "/webhooks/resend": {
        post: {
          operationId: "resend_events",
          tags: ["meta"],
          summary: "Resend's delivery events (Svix-signed with RESEND_WEBHOOK_SECRET; no API key)",
          security: [],
          responses: { 200: json(ref("Json"), "Recorded"), 401: error("Not signed by Resend") },
        },
      },
      "/v1/schedules": {
        get: {
          operationId: "list_schedules",
          tags: ["schedules"],
          summary: "Declared schedules against QStash's, with drift",
          responses: { 200: json(ref("Json"), "`{ schedules, orphans }`"), ...common },
        },
      },
      "/v1/schedules/sync": {
        post: {
          operationId: "sync_schedules",
          tags: ["schedules"],
          summary: "Make QStash's schedules equal to the code's (the Cron Trigger does this too)",
          responses: { 200: json(ref("Json"), "`{ created, updated, deleted, unchanged, foreign }`: schedule ids"), ...common },
        },
      },
      "/v1/schedules/{id}/{action}": {
        post: {
          operationId: "pause_or_resume_schedule",
          tags: ["schedules"],
          summary: "Pause or resume a schedule",
          parameters: [
            path("id", "A celeriac schedule id (`celeriac-<task>-<name>`)"),
            { ...path("action", "pause or resume"), schema: { type: "string", enum: ["pause", "resume"] } },
          ],
          responses: { 200: json(ref("Json"), "`{ id, paused }`"), 404: error("No celeriac schedule with this id"), ...common },
        },
      },
      "/v1/stats": {
        get: {
          operationId: "stats_today",
          tags: ["stats"],
          summary: "Today's counters per task type (UTC)",
          responses: { 200: json(ref("Json"), "The day's report"), ...common },
        },
      },
      "/v1/stats/daily/{date}": {
        get: {
          operationId: "stats_daily",
          tags: ["stats"],
          summary: "A stored daily report",
          parameters: [path("date", "YYYY-MM-DD")],
          responses: { 200: json(ref("Json"), "The report"), 404: error("No report for this date"), ...common },
        },
      },
      "/healthz": {
        get: {
          operationId: "health",
          tags: ["meta"],
          summary: "Configuration and Redis check",
          security: [],
          responses: {
            200: json(ref("Json"), "Healthy (`degraded: true` when a task's variables are missing)"),
            503: json(ref("Json"), "Misconfigured, or Redis down"),
          },
        },
      },
      "/openapi.json": {
        get: {
          operationId: "openapi",
          tags: ["meta"],
          summary: "This document",
          security: [],
          responses: { 200: json(ref("Json"), "OpenAPI 3.1") },
        },
      },
      "/docs": {
        get: {
          operationId: "docs",
          tags: ["meta"],
          summary: "A reference page rendering this document (works offline)",
          security: [],
          responses: { 200: { description: "HTML" } },
        },
      },
    },
    components: {
      securitySchemes: { apiKey: { type: "http", scheme: "bearer", description: "A key of CELERIAC_API_KEYS" } },
      schemas: { ...SCHEMAS, ...payloads },
    },
  };
}
