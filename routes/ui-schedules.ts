import { Hono } from "hono";
import { html } from "hono/html";
import { enqueueOne } from "../src/enqueue.ts";
import { ApiError } from "../src/errors.ts";
import { desiredSchedules, scheduleStatus, setPaused, syncSchedules, viaQstash } from "../src/schedules.ts";
import { action, notice, page, time, type UiEnv, uiScope } from "./ui-layout.ts";

const DONE: Record<string, string> = { paused: "Paused", resumed: "Resumed", synced: "Synced with QStash" };

/** Declared vs. live schedules, with drift; pause, resume, run now, sync. */
export const uiSchedules = new Hono<UiEnv>()
  .get("/schedules", async (c) => {
    const { schedules, orphans } = await viaQstash(scheduleStatus(c.var.relay));
    const done = DONE[c.req.query("done") ?? ""];
    const which = schedules.find((s) => s.id === c.req.query("id"))?.id;
    return page(
      c,
      "Schedules",
      html`${done ? notice(`${done}${which ? ` ${which}` : ""}.`, "ok") : ""}
<div class="actions">${action(c, "/ui/schedules/sync", "Sync with QStash")}</div>
<p class="hint">Sync creates or updates each declared schedule that is missing or drifted, and deletes celeriac's schedules no longer declared.</p>
${
  schedules.length
    ? html`<div class="scroll"><table>
<thead><tr><th scope="col">Schedule</th><th scope="col">Cron</th><th scope="col">Live</th><th scope="col">Next run</th><th scope="col">Last run</th><th scope="col">Drift</th><th scope="col">Actions</th></tr></thead>
<tbody>${schedules.map(
        (s) => html`<tr>
<th scope="row"><code>${s.id}</code><br><a href="/ui/tasks?task=${s.task}">${s.task}</a></th>
<td><code>${s.cron}</code> ${s.timezone}</td>
<td>${s.live ? (s.live.paused ? html`<span class="badge s-retrying">paused</span>` : html`<span class="badge s-succeeded">active</span>`) : html`<span class="badge s-failed">missing</span>`}</td>
<td>${time(s.live?.nextRun)}</td><td>${time(s.live?.lastRun)}</td>
<td>${s.drift.length ? html`<ul>${s.drift.map((d) => html`<li>${d}</li>`)}</ul>` : html`<span class="muted">none</span>`}</td>
<td><div class="actions">${s.live ? (s.live.paused ? action(c, `/ui/schedules/${s.id}/resume`, "Resume") : action(c, `/ui/schedules/${s.id}/pause`, "Pause", {}, "secondary")) : ""}${action(c, `/ui/schedules/${s.id}/run`, "Run now", {}, "secondary")}</div></td>
</tr>`,
      )}</tbody></table></div>`
    : html`<p class="muted">No task declares a schedule.</p>`
}
${orphans.length ? html`<h2>No longer declared</h2><ul>${orphans.map((o) => html`<li><code>${o.id}</code> (${o.cron}): ${o.drift.join("; ")}</li>`)}</ul>` : ""}`,
    );
  })
  .post("/schedules/sync", async (c) => {
    await viaQstash(syncSchedules(c.var.relay));
    return c.redirect("/ui/schedules?done=synced", 303);
  })
  .post("/schedules/:id/:op{pause|resume}", async (c) => {
    const { id, paused } = await setPaused(c.var.relay, c.req.param("id"), c.req.param("op") === "pause");
    return c.redirect(`/ui/schedules?done=${paused ? "paused" : "resumed"}&id=${encodeURIComponent(id)}`, 303);
  })
  // Runs the declared task with the schedule's payload once, now, through the one enqueue path.
  .post("/schedules/:id/run", async (c) => {
    const s = desiredSchedules(c.var.relay).find((d) => d.scheduleId === c.req.param("id"));
    if (!s) throw new ApiError(404, { code: "unknown_schedule", message: `No declared schedule "${c.req.param("id")}".` });
    const declared = c.var.relay.registry.get(s.task)!.schedules.find((d) => d.name === s.name);
    const e = await enqueueOne(c.var.relay, uiScope(c.var.session), s.task, { payload: declared?.payload ?? null });
    return c.redirect(`/ui/tasks/${e.id}`, 303);
  });
