// The operations each registered task adds to the OpenAPI document: its enqueue route, and for a
// public task its browser route, with the payload schema derived from its valibot schema.
import { toJsonSchema } from "@valibot/to-json-schema";
import { browser, common, error, json, ref, type Schema } from "./openapi-parts.ts";
import { SCHEMAS } from "./openapi-schemas.ts";
import type { AnyTask } from "./registry.ts";

/** The component name of a task's payload schema. */
export const payloadSchemaName = (task: string) => `${task}.payload`;

/**
 * A task's payload as JSON Schema (2020-12, input side). Checks that valibot runs as code (e.g.
 * "html or text") have no JSON Schema form and are left out; the server still enforces them.
 */
export function payloadSchema(def: AnyTask): Schema {
  const { $schema: _, ...schema } = toJsonSchema(def.input, { target: "draft-2020-12", typeMode: "input", errorMode: "ignore" }) as Schema;
  return schema;
}

export function enqueueOperation(def: AnyTask) {
  const { payload: _, ...options } = SCHEMAS.EnqueueOptions.properties as Record<string, Schema>;
  return {
    post: {
      operationId: `enqueue_${def.name.replaceAll("-", "_")}`,
      tags: ["tasks"],
      summary: `Enqueue ${def.name}`,
      description: `Validates the payload against task \`${def.name}\` and hands it to QStash. Defaults: ${def.retries} retries, ${def.timeout} s timeout. An \`Idempotency-Key\` header (or \`idempotencyKey\`) answers the first task again (200).`,
      parameters: [{ name: "Idempotency-Key", in: "header", required: false, schema: { type: "string" } }],
      requestBody: {
        required: true,
        content: {
          "application/json": {
            schema: {
              type: "object",
              additionalProperties: false,
              required: ["payload"],
              properties: { payload: ref(payloadSchemaName(def.name)), ...options },
            },
          },
        },
      },
      responses: {
        202: json(ref("Enqueued"), "Enqueued"),
        200: json(ref("Enqueued"), "An idempotency key matched an earlier task, which is answered"),
        409: error("The idempotency key was first used with another task or payload"),
        413: error("The body is over 1 MB"),
        415: error("The body is not sent as JSON (`unsupported_media_type`)"),
        422: error("The payload does not fit the task (`invalid_payload`; issues name each field)"),
        ...common,
      },
    },
  };
}

export /** A public task's browser route: its payload as the body, no key. */
function publicOperation(def: AnyTask) {
  return {
    post: {
      operationId: `public_${def.name.replaceAll("-", "_")}`,
      tags: ["browsers"],
      summary: `Call ${def.name} from a page (no key)`,
      description:
        "CORS from the task's allow-list; limits per IP and recipient; the same answer whether or not the recipient exists. The receipt reads the task's state.",
      security: [],
      requestBody: { required: true, content: { "application/json": { schema: ref(payloadSchemaName(def.name)) } } },
      responses: {
        202: json(
          { type: "object", required: ["receipt", "state"], properties: { receipt: { type: "string" }, state: { type: "string" } } },
          "Enqueued",
        ),
        413: error("The body is over 4 KiB"),
        415: error("The body is not sent as JSON"),
        422: error("The payload does not fit the task (`invalid_payload`)"),
        429: error("A limit is reached (`rate_limited`); `Retry-After` says when"),
        ...browser("Misconfigured, or a service unavailable"),
      },
    },
  };
}
