import { Hono } from "hono";
import { html } from "hono/html";
import { dayReport } from "../src/stats.ts";
import { type MinuteCount, utcDay } from "../src/store/index.ts";
import { TASK_STATES } from "../src/store/record.ts";
import { badge, page, time, type UiEnv } from "./ui-layout.ts";

/** Seconds between refreshes of the overview. */
const LIVE_S = 5;
const ms = (n: number | null) => (n === null ? "—" : n >= 1000 ? `≤ ${n / 1000} s` : `≤ ${n} ms`);

/** Finished tasks per minute as stacked bars (failed on top), with a text summary for screen readers. */
function chart(minutes: MinuteCount[]) {
  const W = 600,
    H = 150,
    top = 24,
    bottom = 22,
    bw = W / minutes.length;
  const peak = Math.max(1, ...minutes.map((m) => m.succeeded + m.failed));
  const y = (n: number) => ((H - top - bottom) * n) / peak;
  const total = minutes.reduce((a, m) => a + m.succeeded + m.failed, 0);
  const failed = minutes.reduce((a, m) => a + m.failed, 0);
  const summary = `${total} task(s) finished in the last hour (${failed} failed); busiest minute: ${peak === 1 && total === 0 ? 0 : peak}.`;
  const hhmm = (at: number) => new Date(at).toISOString().slice(11, 16);
  return html`<figure>
<svg class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-labelledby="chart-caption">
<line class="axis" x1="0" y1="${H - bottom}" x2="${W}" y2="${H - bottom}"/>
${minutes.map((m, i) => {
  const hs = y(m.succeeded),
    hf = y(m.failed),
    x = (i * bw + 1).toFixed(1),
    w = Math.max(1, bw - 2).toFixed(1);
  return html`<g><title>${hhmm(m.at)} UTC: ${m.succeeded} succeeded, ${m.failed} failed</title>${m.succeeded ? html`<rect class="bar-s" x="${x}" y="${(H - bottom - hs).toFixed(1)}" width="${w}" height="${hs.toFixed(1)}"/>` : ""}${m.failed ? html`<rect class="bar-f" x="${x}" y="${(H - bottom - hs - hf).toFixed(1)}" width="${w}" height="${hf.toFixed(1)}"/>` : ""}</g>`;
})}
<text x="0" y="${H - 4}">${hhmm(minutes[0]!.at)} UTC</text><text x="${W}" y="${H - 4}" text-anchor="end">${hhmm(minutes.at(-1)!.at)}</text>
<text x="0" y="${top - 2}">peak ${peak}/min</text>
</svg>
<figcaption id="chart-caption">Tasks finished per minute, last hour (green succeeded, red failed). ${summary}</figcaption>
</figure>`;
}

export const uiOverview = new Hono<UiEnv>().get("/", async (c) => {
  const { store } = c.var.relay;
  const now = Date.now();
  const [counts, report, minutes, failures] = await Promise.all([
    store.countByState(),
    dayReport(store, utcDay(now)),
    store.perMinute(now),
    store.list({ state: "failed", limit: 5 }),
  ]);
  const types = Object.entries(report.tasks).sort(([a], [b]) => a.localeCompare(b));
  return page(
    c,
    "Overview",
    html`
<h2>Tasks now</h2>
<ul class="cards">${TASK_STATES.map((s) => html`<li><a href="/ui/tasks?state=${s}"><strong>${counts[s]}</strong>${badge(s)}</a></li>`)}</ul>
<h2>Today (${report.date}, UTC) per task type</h2>
${
  types.length
    ? html`<div class="scroll"><table>
<thead><tr><th scope="col">Task</th><th scope="col" class="n">Enqueued</th><th scope="col" class="n">Succeeded</th><th scope="col" class="n">Failed</th><th scope="col" class="n">Retries</th><th scope="col" class="n">p50 run</th><th scope="col" class="n">p95 run</th></tr></thead>
<tbody>${types.map(([name, t]) => html`<tr><th scope="row"><a href="/ui/tasks?task=${name}">${name}</a></th><td class="n">${t.enqueued}</td><td class="n">${t.succeeded}</td><td class="n">${t.failed}</td><td class="n">${t.retries}</td><td class="n">${ms(t.p50Ms)}</td><td class="n">${ms(t.p95Ms)}</td></tr>`)}</tbody>
</table></div>
<p class="hint">Run times are the upper bounds of the duration buckets the counters keep.</p>`
    : html`<p class="muted">Nothing was enqueued today yet.</p>`
}
<h2>Throughput</h2>
${chart(minutes)}
<h2>Latest failures</h2>
${
  failures.tasks.length
    ? html`<div class="scroll"><table><thead><tr><th scope="col">Task</th><th scope="col">Finished</th><th scope="col">Error</th></tr></thead><tbody>
${failures.tasks.map((t) => html`<tr><td><a class="id" href="/ui/tasks/${t.id}">${t.id}</a><br>${t.task}</td><td>${time(t.finishedAt)}</td><td>${t.error ? html`<code>${t.error.code}</code> ${t.error.message}` : ""}</td></tr>`)}
</tbody></table></div><p><a href="/ui/dead">All failed tasks (dead letters)</a></p>`
    : html`<p class="muted">No failed tasks.</p>`
}`,
    { live: LIVE_S },
  );
});
