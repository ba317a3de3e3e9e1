import * as v from "valibot";
import { ApiError } from "./errors.ts";
import { joinIssues } from "./options.ts";
import { toIssues } from "./registry.ts";
import type { Relay } from "./relay.ts";
import { TASK_STATES } from "./store/record.ts";

const ListQuery = v.object({
  state: v.optional(v.picklist(TASK_STATES, `state must be one of ${TASK_STATES.join(", ")}`)),
  task: v.optional(v.string()),
  cursor: v.optional(v.string()),
  limit: v.optional(v.pipe(v.string(), v.transform(Number), v.integer("limit must be an integer"), v.minValue(1), v.maxValue(100)), "20"),
});

/**
 * One page of task records for a list query (`state`, `task`, `cursor`, `limit` as strings, as
 * they come in a URL): 400 for a malformed one, 404 for a task type that does not exist.
 */
export async function listTasks(relay: Relay, query: Record<string, string>) {
  const q = v.safeParse(ListQuery, query);
  if (!q.success) {
    const issues = toIssues(q.issues);
    throw new ApiError(400, { code: "invalid_query", message: joinIssues(issues), issues });
  }
  const { state, task, cursor, limit } = q.output;
  if (task !== undefined && !relay.registry.get(task))
    throw new ApiError(404, { code: "unknown_task", message: `no task named "${task}"` });
  try {
    return await relay.store.list({ limit, ...(state ? { state } : {}), ...(task ? { task } : {}), ...(cursor ? { cursor } : {}) });
  } catch (err) {
    if (err instanceof RangeError) throw new ApiError(400, { code: "invalid_query", message: `cursor: ${err.message}` });
    throw err;
  }
}
