// Dead letters: failed tasks not yet replayed or discarded (src/dead-letters.ts, as the API's
// /v1/dead), replayed one at a time or by filter after a dry-run count, or discarded.
import { type Context, Hono } from "hono";
import { html } from "hono/html";
import { deadLetters, discardDeadLetter, MAX_REPLAY, replayDead, replayMatching } from "../src/dead-letters.ts";
import { ApiError } from "../src/errors.ts";
import { TASK_ID } from "../src/ids.ts";
import { action, notice, page, token, type UiEnv } from "./ui-layout.ts";
import { rows } from "./ui-tasks.ts";

const unknown = (id: string) => new ApiError(404, { code: "unknown", message: `No task with id "${id}" (never enqueued, or expired).` });

/** The task-type filter: "" for any, else a task this relay serves (404 otherwise). */
function taskFilter(c: Context<UiEnv>, task: unknown): string {
  const t = typeof task === "string" ? task : "";
  if (t && !c.var.relay.registry.get(t)) throw new ApiError(404, { code: "unknown_task", message: `No task named "${t}".` });
  return t;
}

const taskSelect = (c: Context<UiEnv>, selected: string) => html`<label for="d-task">Task type</label>
<select id="d-task" name="task"><option value="">any</option>${c.var.relay.registry.names.map((n) => html`<option${n === selected ? html` selected` : ""}>${n}</option>`)}</select>`;

export const uiDead = new Hono<UiEnv>()
  .get("/dead", async (c) => {
    const task = taskFilter(c, c.req.query("task"));
    const cursor = c.req.query("cursor") ?? "";
    let list: Awaited<ReturnType<typeof deadLetters>>;
    try {
      list = await deadLetters(c.var.relay, { limit: 20, ...(task ? { task } : {}), ...(cursor ? { cursor } : {}) });
    } catch (err) {
      if (err instanceof RangeError) throw new ApiError(400, { code: "invalid_query", message: `cursor: ${err.message}` });
      throw err;
    }
    const q = (k: string) => c.req.query(k);
    return page(
      c,
      "Dead letters",
      html`${q("replayed") ? notice(`Replayed ${q("replayed")} task(s)${q("skipped") && q("skipped") !== "0" ? `; ${q("skipped")} had changed meanwhile or hold redacted values, and were left alone` : ""}.`, "ok") : ""}
${q("discarded") ? notice("Discarded: the task stays failed, out of the dead letters.", "ok") : ""}
<p class="hint">Tasks that failed for good. Replaying one re-enqueues it under the same id, keeping its history; discarding takes it out of this list.</p>
<form method="get" action="/ui/dead/replay" class="filters">
<div>${taskSelect(c, task)}</div>
<div class="actions"><button type="submit" formaction="/ui/dead" class="secondary">Show</button><button type="submit" class="secondary">Replay by filter…</button></div>
</form>
${
  list.tasks.length
    ? rows(
        list.tasks,
        (t) =>
          html`<div class="actions">${t.redacted?.length ? html`<a href="/ui/tasks/${t.id}">redacted: enqueue again</a>` : action(c, `/ui/dead/${t.id}/replay`, "Replay")}${action(c, `/ui/dead/${t.id}/discard`, "Discard", {}, "secondary")}</div>`,
      )
    : html`<p class="muted">No dead letters${task ? ` of type ${task}` : ""}.</p>`
}
${list.cursor ? html`<p><a rel="next" href="/ui/dead?${new URLSearchParams({ ...(task ? { task } : {}), cursor: list.cursor })}">Next page</a></p>` : ""}`,
    );
  })
  // The dry run: how many a replay would take on, and the form that does it.
  .get("/dead/replay", async (c) => {
    const task = taskFilter(c, c.req.query("task"));
    const dry = await replayMatching(c.var.relay, task ? { task } : {}, true);
    const n = dry.matched;
    return page(
      c,
      "Replay by filter",
      html`<p role="status"><strong>${dry.more ? `At least ${n}` : n}</strong> dead letter(s)${task ? html` of type <code>${task}</code>` : ""} match now.</p>
${
  n
    ? html`<form method="post" action="/ui/dead/replay">
${token(c)}<input type="hidden" name="task" value="${task}">
<p class="hint">Those that still match when you click are replayed (up to ${MAX_REPLAY}); a task whose record holds redacted values is left alone.</p>
<button type="submit">Replay ${n} task(s)</button> <a href="/ui/dead">Cancel</a>
</form>`
    : html`<p><a href="/ui/dead">Back to dead letters</a></p>`
}`,
    );
  })
  .post("/dead/replay", async (c) => {
    const task = taskFilter(c, (await c.req.parseBody()).task);
    const r = await replayMatching(c.var.relay, task ? { task } : {}, false);
    const done: Record<string, string> = "replayed" in r ? { replayed: String(r.replayed), skipped: String(r.skipped) } : { replayed: "0" };
    return c.redirect(`/ui/dead?${new URLSearchParams({ ...done, ...(task ? { task } : {}) })}`, 303);
  })
  .post("/dead/:id/replay", async (c) => {
    const id = c.req.param("id");
    if (!TASK_ID.test(id) || !(await replayDead(c.var.relay, id))) throw unknown(id);
    return c.redirect(`/ui/tasks/${id}`, 303);
  })
  .post("/dead/:id/discard", async (c) => {
    const id = c.req.param("id");
    if (!TASK_ID.test(id) || !(await discardDeadLetter(c.var.relay, id))) throw unknown(id);
    return c.redirect("/ui/dead?discarded=1", 303);
  });
