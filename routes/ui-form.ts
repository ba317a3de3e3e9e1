// A form generated from a task's input schema (valibot → JSON Schema), and the payload read back
// from what the browser posts. The payload is then checked by the task's own schema at enqueue,
// so this only has to be helpful, never authoritative.
import { toJsonSchema } from "@valibot/to-json-schema";
import { html } from "hono/html";
import type { AnyTask } from "../src/registry.ts";
import type { Html } from "./ui-layout.ts";

interface Schema {
  type?: string | string[];
  properties?: Record<string, Schema>;
  required?: string[];
  enum?: unknown[];
  anyOf?: Schema[];
  format?: string;
  maxLength?: number;
  default?: unknown;
  description?: string;
}

type Kind = "text" | "long" | "number" | "boolean" | "select" | "json";
export interface Field {
  name: string;
  kind: Kind;
  required: boolean;
  schema: Schema;
  /** Whether a value that is not JSON may be taken as plain text (the schema admits a string). */
  text: boolean;
}

const schemas = new WeakMap<AnyTask, Schema>();
/** The task's input as JSON Schema; checks it cannot express (custom checks) are left to the task. */
export function inputSchema(def: AnyTask): Schema {
  let s = schemas.get(def);
  if (!s) schemas.set(def, (s = toJsonSchema(def.input, { errorMode: "ignore" }) as Schema));
  return s;
}

function kindOf(s: Schema): Kind {
  if (s.enum) return "select";
  if (s.type === "boolean") return "boolean";
  if (s.type === "number" || s.type === "integer") return "number";
  // Text without a short limit is likely prose (a mail's body): a text area.
  if (s.type === "string") return s.maxLength !== undefined && s.maxLength <= 1000 ? "text" : "long";
  return "json";
}

/** The fields of a task's form: one per top-level property, or one JSON field for the whole payload. */
export function fieldsOf(def: AnyTask): Field[] {
  const s = inputSchema(def);
  if (s.type !== "object" || !s.properties) return [{ name: "", kind: "json", required: true, schema: s, text: false }];
  return Object.entries(s.properties).map(([name, p]) => ({
    name,
    kind: kindOf(p),
    required: s.required?.includes(name) ?? false,
    schema: p,
    text: p.type === "string" || (p.anyOf?.some((a) => a.type === "string") ?? false),
  }));
}

const inputType = (s: Schema) => (s.format === "email" ? "email" : s.format === "uri" ? "url" : s.format === "date" ? "date" : "text");

/** One field's label, control, hint and error, tied together for screen readers. */
export function renderField(f: Field, value: string, error: string | undefined): Html {
  const id = `p-${f.name || "payload"}`;
  const name = `p.${f.name}`;
  const hintId = `${id}-hint`, errId = `${id}-err`;
  const hint = f.kind === "json" ? (f.text ? "Text, or JSON for a list or object." : "JSON.") : "";
  const described = [hint ? hintId : "", error ? errId : ""].filter(Boolean).join(" ");
  const common = html` id="${id}" name="${name}"${f.required ? html` required` : ""}${described ? html` aria-describedby="${described}"` : ""}${error ? html` aria-invalid="true"` : ""}`;
  const control =
    f.kind === "select"
      ? html`<select${common}>${f.required ? "" : html`<option value="">(default)</option>`}${(f.schema.enum ?? []).map((o) => html`<option${String(o) === value ? html` selected` : ""}>${String(o)}</option>`)}</select>`
      : f.kind === "boolean"
        ? html`<input type="checkbox" value="true"${value === "true" ? html` checked` : ""}${common}>`
        : f.kind === "number"
          ? html`<input type="number" step="any" value="${value}"${common}>`
          : f.kind === "text"
            ? html`<input type="${inputType(f.schema)}" value="${value}"${common}>`
            : html`<textarea spellcheck="${f.kind === "long"}"${common}>${value}</textarea>`;
  return html`<div class="field">
<label for="${id}">${f.name || "Payload"}${f.required ? "" : html` <span class="muted">(optional)</span>`}</label>
${hint ? html`<p class="hint" id="${hintId}">${hint}</p>` : ""}${control}
${error ? html`<p class="field-error" id="${errId}">${error}</p>` : ""}
</div>`;
}

/** The payload from posted form values (`p.<name>`); blank optional fields are left out. */
export function payloadOf(fields: Field[], form: Record<string, unknown>): { payload: unknown; problems: Record<string, string> } {
  const problems: Record<string, string> = {};
  const out: Record<string, unknown> = {};
  const read = (f: Field, raw: string): unknown => {
    if (f.kind === "boolean") return raw === "true";
    if (f.kind === "number") return Number(raw);
    if (f.kind !== "json") return raw;
    try {
      return JSON.parse(raw);
    } catch {
      if (f.text) return raw;
      problems[f.name] = "is not valid JSON";
      return undefined;
    }
  };
  for (const f of fields) {
    const raw = typeof form[`p.${f.name}`] === "string" ? (form[`p.${f.name}`] as string) : "";
    if (f.kind === "boolean" ? raw === "" && !f.required : raw.trim() === "") continue;
    const value = read(f, f.kind === "json" ? raw.trim() : raw);
    if (f.name === "") return { payload: value, problems };
    out[f.name] = value;
  }
  return { payload: out, problems };
}
