// How the CLI prints records for people (--json prints the API's JSON instead).
import type { Enqueued, ScheduleStatus, SyncReport, TaskRecord } from "../src/client.ts";

const short = (x: unknown) => {
  const s = JSON.stringify(x);
  return s.length > 200 ? `${s.slice(0, 197)}...` : s;
};

export function enqueued(e: Enqueued): string {
  return `${e.id} ${e.state} (${e.task}${e.duplicate ? ", duplicate of an earlier enqueue" : ""}), runs at ${e.runAt}`;
}

export function record(r: TaskRecord): string {
  const lines = [`${r.id} ${r.state} (${r.task}, attempt ${r.attempts} of ${r.options.retries + 1})`];
  if (r.nextAttemptAt) lines.push(`  next attempt at ${r.nextAttemptAt}`);
  if (r.result !== undefined) lines.push(`  result: ${short(r.result)}`);
  if (r.error) lines.push(`  error: ${r.error.code}: ${r.error.message}`);
  return lines.join("\n");
}

/** The one-line progress of `wait`. */
export function progress(r: TaskRecord): string {
  const next = r.nextAttemptAt ? `, next attempt at ${r.nextAttemptAt}` : "";
  return `${r.id} ${r.state}, attempt ${r.attempts}${next}`;
}

export function list(tasks: TaskRecord[], cursor?: string): string {
  const rows = tasks.map((t) => [t.id, t.task, t.state, String(t.attempts), t.createdAt]);
  const head = ["ID", "TASK", "STATE", "ATTEMPTS", "CREATED"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  return [line(head), ...rows.map(line), ...(cursor ? [`(more: --cursor ${cursor})`] : [])].join("\n");
}

export function schedules(s: ScheduleStatus): string {
  const rows = s.schedules.map(
    (d) =>
      `${d.id}  ${d.cron} ${d.timezone}  ${d.live ? (d.live.paused ? "paused" : `next ${d.live.nextRun ?? "?"}`) : "not in QStash"}${d.drift.length ? `  drift: ${d.drift.join("; ")}` : ""}`,
  );
  const orphans = s.orphans.map((o) => `${o.id}  ${o.cron}  orphan: ${o.drift.join("; ")}`);
  return [...rows, ...orphans].join("\n") || "no schedules declared";
}

export function sync(r: SyncReport): string {
  return (["created", "updated", "deleted", "unchanged", "foreign"] as const)
    .map((k) => `${k}: ${r[k].length ? r[k].join(", ") : "-"}`)
    .join("\n");
}
