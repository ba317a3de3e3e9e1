// A form generated from a task's input schema, read straight from the valibot schema object (its
// `type`, `entries`, `options`, `wrapped` and pipe actions), and the payload read back from what the
// browser posts. The payload is then checked by the task's own schema at enqueue, so this only has
// to be helpful, never authoritative. (@valibot/to-json-schema, which /openapi.json uses, gives the
// same facts through JSON Schema; it is in the Worker bundle either way, but loaded only when
// /openapi.json is first asked for, and the form needs a handful of facts, so it reads them itself.)
import { html } from "hono/html";
import type { AnyTask } from "../src/registry.ts";
import type { Html } from "./ui-layout.ts";

/** The parts of a valibot schema the form reads. */
interface Schema {
  type: string;
  entries?: Record<string, Schema>;
  wrapped?: Schema;
  options?: unknown[];
  pipe?: { type: string; requirement?: unknown; description?: string }[];
}

type Kind = "text" | "long" | "number" | "boolean" | "select" | "json";
export interface Field {
  name: string;
  kind: Kind;
  required: boolean;
  /** Choices of a select. */
  options: string[];
  /** `email`, `url` or `date` for a text field that must be one. */
  format?: string;
  description?: string;
  /** Whether a value that is not JSON may be taken as plain text (the schema admits a string). */
  text: boolean;
}

const OPTIONAL = new Set(["optional", "nullish", "exact_optional", "undefinedable"]);
const FORMATS: Record<string, string> = { email: "email", url: "url", iso_date: "date" };
/** Names of text fields that usually hold prose (a mail's body): a text area when unbounded. */
const PROSE = /^(text|html|body|content|message|description|markdown)$/i;

function field(name: string, schema: Schema): Field {
  let s = schema;
  let required = true;
  while (OPTIONAL.has(s.type) && s.wrapped) [s, required] = [s.wrapped, false];
  const actions = s.pipe?.slice(1) ?? [];
  const max = actions.find((a) => a.type === "max_length")?.requirement;
  const format = actions.map((a) => FORMATS[a.type]).find(Boolean);
  const description = actions.find((a) => a.type === "description")?.description;
  const kind: Kind =
    s.type === "picklist" || s.type === "enum"
      ? "select"
      : s.type === "boolean"
        ? "boolean"
        : s.type === "number"
          ? "number"
          : s.type === "string"
            ? PROSE.test(name) && !(typeof max === "number" && max <= 1000)
              ? "long"
              : "text"
            : "json";
  const text = s.type === "string" || (s.type === "union" && (s.options as Schema[]).some((o) => o.type === "string"));
  return {
    name,
    kind,
    required,
    options: kind === "select" ? (s.options ?? []).map(String) : [],
    text,
    ...(format ? { format } : {}),
    ...(description ? { description } : {}),
  };
}

const fields = new WeakMap<AnyTask, Field[]>();
/** The fields of a task's form: one per entry of an object schema, or one JSON field for the whole payload. */
export function fieldsOf(def: AnyTask): Field[] {
  let f = fields.get(def);
  if (!f) {
    const s = def.input as unknown as Schema;
    f = s.entries ? Object.entries(s.entries).map(([name, e]) => field(name, e)) : [{ ...field("", s), kind: "json", required: true }];
    fields.set(def, f);
  }
  return f;
}

/** One field's label, control, hint and error, tied together for screen readers; `focus` puts the cursor there. */
export function renderField(f: Field, value: string, error: string | undefined, focus = false): Html {
  const id = `p-${f.name || "payload"}`;
  const name = `p.${f.name}`;
  const hintId = `${id}-hint`,
    errId = `${id}-err`;
  const hint = [f.description ?? "", f.kind === "json" ? (f.text ? "Text, or JSON for a list or object." : "JSON.") : ""]
    .filter(Boolean)
    .join(" ");
  const described = [hint ? hintId : "", error ? errId : ""].filter(Boolean).join(" ");
  const common = html` id="${id}" name="${name}"${f.required ? html` required` : ""}${described ? html` aria-describedby="${described}"` : ""}${error ? html` aria-invalid="true"` : ""}${focus ? html` autofocus` : ""}`;
  const control =
    f.kind === "select"
      ? html`<select${common}>${f.required ? "" : html`<option value="">(default)</option>`}${f.options.map((o) => html`<option${o === value ? html` selected` : ""}>${o}</option>`)}</select>`
      : f.kind === "boolean"
        ? html`<input type="checkbox" value="true"${value === "true" ? html` checked` : ""}${common}>`
        : f.kind === "number"
          ? html`<input type="number" step="any" value="${value}"${common}>`
          : f.kind === "text" || (f.kind === "json" && f.text)
            ? html`<input type="${f.format ?? "text"}" value="${value}"${common}>`
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
