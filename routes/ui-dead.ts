// Dead letters: the failed tasks, replayed one at a time or by filter after a dry-run count.
// Replaying is the task API's retry (same id, history kept, generation bumped).
import { Hono, type Context } from "hono";
import { html } from "hono/html";
import { ApiError } from "../src/errors.ts";
import { TASK_ID } from "../src/ids.ts";
import { retryTask } from "../src/lifecycle.ts";
import { listTasks } from "../src/list.ts";
import type { TaskRecord } from "../src/store/record.ts";
import { action, notice, page, token, type UiEnv } from "./ui-layout.ts";
import { rows } from "./ui-tasks.ts";

/**
 * Most tasks one replay-by-filter submit re-enqueues: each costs four subrequests (three to Redis,
 * one to QStash), and a Worker request may make only so many. Submit again for the rest.
 */
const REPLAY_BATCH = 25;
/** Most failed tasks a dry run counts. */
const COUNT_CAP = 1000;

/**
 * The failed tasks matching `task` (any when empty) that finished at or before `before`, up to
 * `cap`, and how many more matched but cannot be replayed (their records hold redacted values).
 */
async function matching(c: Context<UiEnv>, task: string, before: number, cap: number): Promise<{ tasks: TaskRecord[]; redacted: number }> {
  const tasks: TaskRecord[] = [];
  let redacted = 0;
  let cursor: string | undefined;
  do {
    const page = await listTasks(c.var.relay, { state: "failed", limit: "100", ...(task ? { task } : {}), ...(cursor ? { cursor } : {}) });
    for (const t of page.tasks) {
      if (tasks.length >= cap || Date.parse(t.finishedAt ?? t.createdAt) > before) continue;
      if (t.redacted?.length) redacted++;
      else tasks.push(t);
    }
    cursor = page.cursor;
  } while (cursor && tasks.length < cap);
  return { tasks, redacted };
}

const taskSelect = (c: Context<UiEnv>, selected: string) => html`<label for="d-task">Task type</label>
<select id="d-task" name="task"><option value="">any</option>${c.var.relay.registry.names.map((n) => html`<option${n === selected ? html` selected` : ""}>${n}</option>`)}</select>`;

export const uiDead = new Hono<UiEnv>()
  .get("/dead", async (c) => {
    const task = c.req.query("task") ?? "";
    const cursor = c.req.query("cursor") ?? "";
    const list = await listTasks(c.var.relay, { state: "failed", ...(task ? { task } : {}), ...(cursor ? { cursor } : {}) });
    const replayed = c.req.query("replayed");
    return page(
      c,
      "Dead letters",
      html`${replayed ? notice(`Replayed ${replayed} task(s)${c.req.query("skipped") ? `; ${c.req.query("skipped")} had changed meanwhile and were left alone` : ""}.`, "ok") : ""}
<p class="hint">Tasks that failed for good. Replaying one re-enqueues it under the same id, keeping its history.</p>
<form method="get" action="/ui/dead/replay" class="filters">
<div>${taskSelect(c, task)}</div>
<div class="actions"><button type="submit" formaction="/ui/dead" class="secondary">Show</button><button type="submit" class="secondary">Replay by filter…</button></div>
</form>
${list.tasks.length ? rows(list.tasks, (t) => (t.redacted?.length ? html`<a href="/ui/tasks/${t.id}">redacted: enqueue again</a>` : action(c, `/ui/dead/${t.id}/replay`, "Replay"))) : html`<p class="muted">No failed tasks${task ? ` of type ${task}` : ""}.</p>`}
${list.cursor ? html`<p><a rel="next" href="/ui/dead?${new URLSearchParams({ ...(task ? { task } : {}), cursor: list.cursor })}">Next page</a></p>` : ""}`,
    );
  })
  // The dry run: how many would be replayed, and the form that does it (for exactly those).
  .get("/dead/replay", async (c) => {
    const task = c.req.query("task") ?? "";
    const before = Date.now();
    const found = await matching(c, task, before, COUNT_CAP);
    const n = found.tasks.length;
    return page(
      c,
      "Replay by filter",
      html`<p role="status"><strong>${n === COUNT_CAP ? `At least ${n}` : n}</strong> failed task(s)${task ? html` of type <code>${task}</code>` : ""} would be replayed (those failed by now; later failures are left alone).</p>
${found.redacted ? html`<p>${found.redacted} more matched but hold redacted values the record never kept; they can only be enqueued again.</p>` : ""}
${n
  ? html`<form method="post" action="/ui/dead/replay">
${token(c)}
<input type="hidden" name="task" value="${task}"><input type="hidden" name="before" value="${before}">
<p>${n > REPLAY_BATCH ? `Each click replays up to ${REPLAY_BATCH}; click again for the rest.` : ""}</p>
<button type="submit">Replay ${Math.min(n, REPLAY_BATCH)} task(s)</button> <a href="/ui/dead">Cancel</a>
</form>`
  : html`<p><a href="/ui/dead">Back to dead letters</a></p>`}`,
    );
  })
  .post("/dead/replay", async (c) => {
    const body = await c.req.parseBody();
    const task = typeof body.task === "string" ? body.task : "";
    const before = Number(body.before);
    if (!Number.isFinite(before) || before <= 0) throw new ApiError(400, { code: "invalid_query", message: "The replay form lost its dry-run time; start again from Dead letters." });
    let replayed = 0, skipped = 0;
    for (const t of (await matching(c, task, before, REPLAY_BATCH)).tasks) {
      try {
        if (await retryTask(c.var.relay, t.id)) replayed++;
      } catch (err) {
        if (!(err instanceof ApiError) || err.status !== 409) throw err;
        skipped++; // retried or finished meanwhile
      }
    }
    return c.redirect(`/ui/dead?${new URLSearchParams({ replayed: String(replayed), ...(skipped ? { skipped: String(skipped) } : {}), ...(task ? { task } : {}) })}`, 303);
  })
  .post("/dead/:id/replay", async (c) => {
    const id = c.req.param("id");
    const t = TASK_ID.test(id) ? await retryTask(c.var.relay, id) : null;
    if (!t) throw new ApiError(404, { code: "unknown", message: `No task with id "${id}" (never enqueued, or expired).` });
    return c.redirect(`/ui/tasks/${id}`, 303);
  });
