import { type Context, Hono } from "hono";
import { html } from "hono/html";
import { withCallbacks } from "../src/callbacks.ts";
import { ApiError } from "../src/errors.ts";
import { TASK_ID } from "../src/ids.ts";
import { CANCELLABLE, cancelTask, RETRYABLE, retryTask } from "../src/lifecycle.ts";
import { listTasks } from "../src/list.ts";
import { FINAL_STATES, TASK_STATES, type TaskRecord } from "../src/store/record.ts";
import { action, badge, json, notice, page, time, type UiEnv } from "./ui-layout.ts";

/** Seconds between refreshes of an unfinished task's page. */
const LIVE_S = 2;

/** 404 for an id that is not a task id or was never seen, before any Redis key is built from it. */
const unknown = (id: string) => new ApiError(404, { code: "unknown", message: `No task with id "${id}" (never enqueued, or expired).` });

async function load(c: Context<UiEnv>, id: string): Promise<TaskRecord> {
  if (!TASK_ID.test(id)) throw unknown(id);
  const t = await c.var.relay.store.get(id);
  if (!t) throw unknown(id);
  return t;
}

/** The same enqueue as a shell command; the key comes from the caller's environment, never from here. */
function curl(base: string, t: TaskRecord): string {
  const body = {
    payload: t.payload,
    retries: t.options.retries,
    timeout: t.options.timeout,
    ...(t.options.retryDelay ? { retryDelay: t.options.retryDelay } : {}),
    ...(t.redacted?.length ? { redact: t.redacted } : {}),
  };
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  return `curl -X POST ${quote(`${base}/v1/tasks/${t.task}`)} \\\n  -H "Authorization: Bearer $CELERIAC_API_KEY" \\\n  -H 'Content-Type: application/json' \\\n  -d ${quote(JSON.stringify(body))}`;
}

/** Filters of the list, kept in the paging links. */
const filterForm = (
  c: Context<UiEnv>,
  q: Record<string, string>,
) => html`<form method="get" action="/ui/tasks" class="filters" role="search">
<div><label for="f-state">State</label><select id="f-state" name="state"><option value="">any</option>${TASK_STATES.map((s) => html`<option${q.state === s ? html` selected` : ""}>${s}</option>`)}</select></div>
<div><label for="f-task">Task type</label><select id="f-task" name="task"><option value="">any</option>${c.var.relay.registry.names.map((n) => html`<option${q.task === n ? html` selected` : ""}>${n}</option>`)}</select></div>
<div><button type="submit">Filter</button></div>
</form>
<form method="get" action="/ui/tasks/find" class="filters" role="search">
<div><label for="f-id">Find by id</label><input id="f-id" name="id" placeholder="tsk_…" value="${q.id ?? ""}" spellcheck="false" autocomplete="off"></div>
<div><button type="submit" class="secondary">Open</button></div>
</form>`;

export const rows = (tasks: TaskRecord[], extra?: (t: TaskRecord) => unknown) => html`<div class="scroll"><table>
<thead><tr><th scope="col">Id</th><th scope="col">Task</th><th scope="col">State</th><th scope="col">Created</th><th scope="col" class="n">Attempts</th><th scope="col">Error</th>${extra ? html`<th scope="col">Action</th>` : ""}</tr></thead>
<tbody>${tasks.map((t) => html`<tr><td><a class="id" href="/ui/tasks/${t.id}">${t.id}</a></td><td>${t.task}</td><td>${badge(t.state)}</td><td>${time(t.createdAt)}</td><td class="n">${t.attempts}</td><td>${t.error ? html`<code>${t.error.code}</code>` : ""}</td>${extra ? html`<td>${extra(t)}</td>` : ""}</tr>`)}</tbody>
</table></div>`;

export const uiTasks = new Hono<UiEnv>()
  .get("/tasks", async (c) => {
    const q = c.req.query();
    const filters = Object.fromEntries(Object.entries(q).filter(([k, v]) => ["state", "task", "cursor"].includes(k) && v !== ""));
    let list: Awaited<ReturnType<typeof listTasks>>;
    try {
      list = await listTasks(c.var.relay, filters);
    } catch (err) {
      if (!(err instanceof ApiError) || err.status >= 500) throw err;
      return page(c, "Tasks", html`${filterForm(c, q)}${notice(`Those filters do not work: ${err.message}`)}`, { status: 400 });
    }
    const next = list.cursor ? `/ui/tasks?${new URLSearchParams({ ...filters, cursor: list.cursor })}` : undefined;
    return page(
      c,
      "Tasks",
      html`${filterForm(c, q)}
${list.tasks.length ? rows(list.tasks) : html`<p class="muted">No task matches.</p>`}
<p>${filters.cursor ? html`<a href="/ui/tasks?${new URLSearchParams(Object.entries(filters).filter(([k]) => k !== "cursor"))}">First page</a> ` : ""}${next ? html`<a href="${next}" rel="next">Next page</a>` : ""}</p>`,
    );
  })
  .get("/tasks/find", (c) => {
    const id = (c.req.query("id") ?? "").trim();
    if (!TASK_ID.test(id))
      throw new ApiError(400, { code: "invalid_query", message: `"${id}" is not a task id (tsk_ and 26 letters or digits).` });
    return c.redirect(`/ui/tasks/${id}`, 303);
  })
  .get("/tasks/:id", async (c) => {
    const t = await withCallbacks(c.var.relay.store, await load(c, c.req.param("id")));
    const def = c.var.relay.registry.get(t.task);
    const done = FINAL_STATES.includes(t.state);
    const facts: [string, unknown][] = [
      ["Task", t.task],
      ["State", badge(t.state)],
      ["Created", time(t.createdAt)],
      ["Due", time(t.runAt)],
      ["Started", time(t.startedAt)],
      ...(t.nextAttemptAt ? [["Next attempt", time(t.nextAttemptAt)] as [string, unknown]] : []),
      ["Finished", time(t.finishedAt)],
      ["Attempts", `${t.attempts} of at most ${t.options.retries + 1}`],
      ...(t.generation ? [["Retried by hand", `${t.generation} time(s)`] as [string, unknown]] : []),
      ...(t.idempotencyKey ? [["Idempotency key", html`<code>${t.idempotencyKey}</code>`] as [string, unknown]] : []),
      ...(t.scheduleId ? [["Schedule", html`<a href="/ui/schedules">${t.scheduleId}</a>`] as [string, unknown]] : []),
      ...(t.messageId ? [["QStash message", html`<code>${t.messageId}</code>`] as [string, unknown]] : []),
      ...(t.redacted?.length
        ? [
            [
              "Redacted",
              html`${t.redacted.map((p, i) => html`${i ? ", " : ""}<code>${p}</code>`)} <span class="muted">(kept out of the record)</span>`,
            ] as [string, unknown],
          ]
        : []),
    ];
    const history = [...t.history].reverse();
    return page(
      c,
      `Task ${t.id}`,
      html`<div class="actions">
${CANCELLABLE.includes(t.state) ? action(c, `/ui/tasks/${t.id}/cancel`, "Cancel", {}, "danger") : ""}
${RETRYABLE.includes(t.state) && !t.redacted?.length ? action(c, `/ui/tasks/${t.id}/retry`, "Retry") : ""}
<a class="button secondary" href="/ui/tasks?task=${t.task}">All ${t.task} tasks</a>
</div>
${done ? "" : html`<p class="hint" role="status">This page refreshes itself until the task finishes.</p>`}
${RETRYABLE.includes(t.state) && t.redacted?.length ? html`<p class="hint">No Retry: the record never held the redacted values, so it cannot send the task again as it was. <a href="/ui/enqueue/${t.task}">Enqueue it again</a> with them.</p>` : ""}
<dl class="facts">${facts.map(([k, v]) => html`<dt>${k}</dt><dd>${v}</dd>`)}</dl>
${t.error ? html`<h2>Error</h2>${notice(html`<code>${t.error.code}</code> ${t.error.message}${t.error.retryable ? " (retryable)" : ""}`)}` : ""}
${t.result !== undefined ? html`<h2>Result</h2>${json(t.result)}` : ""}
${t.delivery !== undefined ? html`<h2>Delivery</h2>${json(t.delivery)}` : ""}
${t.callback !== undefined || t.callbacks !== undefined ? html`<h2>Callbacks</h2>${json({ asked: t.callback, sent: t.callbacks })}` : ""}
<h2>Attempts and changes</h2>
<ol class="timeline">${history.map((h) => html`<li>${time(h.at)} ${badge(h.state)}${h.attempt ? ` attempt ${h.attempt}` : ""}${h.error ? html`<br><code>${h.error.code}</code> ${h.error.message}` : ""}</li>`)}</ol>
<h2>Payload</h2>
${json(t.payload)}
<h2>Options</h2>
${json(t.options)}
<h2>Enqueue the same again</h2>
<p class="hint">Set <code>CELERIAC_API_KEY</code> in your shell first; the key is not shown here.${t.redacted?.length ? " Put the real values where it says [redacted]." : ""}${def ? "" : " (This task type is no longer served.)"}</p>
<pre id="curl">${curl(c.var.relay.config.publicUrl, t)}</pre>
<button type="button" class="secondary" data-copy="curl" hidden>Copy</button>`,
      done ? {} : { live: LIVE_S },
    );
  })
  .post("/tasks/:id/:op{cancel|retry}", async (c) => {
    const t = await load(c, c.req.param("id"));
    const done = c.req.param("op") === "cancel" ? await cancelTask(c.var.relay, t.id) : await retryTask(c.var.relay, t.id);
    if (!done) throw unknown(t.id);
    return c.redirect(`/ui/tasks/${t.id}`, 303);
  });
