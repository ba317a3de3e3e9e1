import { type Context, Hono } from "hono";
import { html } from "hono/html";
import { enqueueOne } from "../src/enqueue.ts";
import { ApiError } from "../src/errors.ts";
import type { AnyTask } from "../src/registry.ts";
import { fieldsOf, payloadOf, renderField } from "./ui-form.ts";
import { notice, page, token, type UiEnv, uiScope } from "./ui-layout.ts";

type Values = Record<string, string>;

function task(c: Context<UiEnv>): AnyTask {
  const def = c.var.relay.registry.get(c.req.param("name") ?? "");
  if (!def) throw new ApiError(404, { code: "unknown_task", message: `No task named "${c.req.param("name")}".` });
  return def;
}

/** The form of one task type; `errors` by field name (`p.<name>`, `delay`, `idempotencyKey`, `redact`, "" for the form). */
function form(c: Context<UiEnv>, def: AnyTask, values: Values = {}, errors: Values = {}, status: 200 | 422 = 200) {
  const opt = (name: string, label: string, hint: string) => html`<div class="field">
<label for="o-${name}">${label} <span class="muted">(optional)</span></label>
<p class="hint" id="o-${name}-hint">${hint}</p>
<input id="o-${name}" name="${name}" value="${values[name] ?? ""}" aria-describedby="o-${name}-hint${errors[name] ? ` o-${name}-err` : ""}"${errors[name] ? html` aria-invalid="true"` : ""}${!firstWrong && errors[name] ? html` autofocus` : ""}>
${errors[name] ? html`<p class="field-error" id="o-${name}-err">${errors[name]}</p>` : ""}
</div>`;
  // After a refused submit, the cursor starts in the first field to fix.
  const fields = fieldsOf(def);
  const firstWrong = fields.find((f) => errors[`p.${f.name}`]);
  return page(
    c,
    `Enqueue ${def.name}`,
    html`${errors[""] ? notice(errors[""]) : Object.keys(errors).length ? notice("Some fields need attention; nothing was enqueued.") : ""}
<form method="post" action="/ui/enqueue/${def.name}" novalidate>
${token(c)}
<fieldset><legend>Payload</legend>
${fields.map((f) => renderField(f, values[`p.${f.name}`] ?? "", errors[`p.${f.name}`], f === firstWrong))}
</fieldset>
<fieldset><legend>Options</legend>
${opt("delay", "Delay", 'Seconds or a duration such as "90s" or "1h30m".')}
${opt("idempotencyKey", "Idempotency key", "The same key within 24 h returns the first task instead of enqueueing another.")}
${opt("redact", "Redact", "Payload paths kept out of the task's record and pages, comma-separated (text, headers.*); the task's own always are.")}
</fieldset>
<p><button type="submit">Enqueue</button></p>
</form>`,
    { status },
  );
}

/** Maps API issue paths (`payload.to.0`, `delay`) to form fields (`p.to`, `delay`). */
function byField(def: AnyTask, issues: { path: string; message: string }[]): Values {
  const names = new Set(fieldsOf(def).map((f) => f.name));
  const out: Values = {};
  for (const i of issues) {
    const [head, second] = i.path.split(".");
    const key =
      head === "payload"
        ? second && names.has(second)
          ? `p.${second}`
          : names.has("")
            ? "p."
            : ""
        : ["delay", "idempotencyKey", "redact"].includes(head!)
          ? head!
          : "";
    out[key] = out[key] ? `${out[key]}; ${i.message}` : i.message;
  }
  return out;
}

export const uiEnqueue = new Hono<UiEnv>()
  .get("/enqueue", (c) =>
    page(
      c,
      "Enqueue",
      html`<p>Pick a task type; its form is built from the task's input schema.</p>
<ul>${c.var.relay.registry.all().map((d) => html`<li><a href="/ui/enqueue/${d.name}">${d.name}</a></li>`)}</ul>`,
    ),
  )
  .get("/enqueue/:name", (c) => form(c, task(c)))
  .post("/enqueue/:name", async (c) => {
    const def = task(c);
    const body = await c.req.parseBody();
    const values: Values = Object.fromEntries(
      Object.entries(body).filter(([k, v]) => k !== "_csrf" && typeof v === "string") as [string, string][],
    );
    const fields = fieldsOf(def);
    const { payload, problems } = payloadOf(fields, body);
    if (Object.keys(problems).length) {
      return form(c, def, values, Object.fromEntries(Object.entries(problems).map(([k, m]) => [`p.${k}`, m])), 422);
    }
    const options = {
      payload,
      ...(values.delay?.trim() ? { delay: /^\d+(\.\d+)?$/.test(values.delay.trim()) ? Number(values.delay) : values.delay.trim() } : {}),
      ...(values.idempotencyKey?.trim() ? { idempotencyKey: values.idempotencyKey.trim() } : {}),
      ...(values.redact?.trim()
        ? {
            redact: values.redact
              .split(",")
              .map((p) => p.trim())
              .filter(Boolean),
          }
        : {}),
    };
    try {
      const e = await enqueueOne(c.var.relay, uiScope(c.var.session), def.name, options);
      return c.redirect(`/ui/tasks/${e.id}`, 303);
    } catch (err) {
      if (!(err instanceof ApiError) || (err.status !== 400 && err.status !== 422 && err.status !== 409)) throw err;
      return form(c, def, values, err.issues?.length ? byField(def, err.issues) : { "": err.message }, 422);
    }
  });
