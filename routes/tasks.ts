import { Hono } from "hono";
import * as v from "valibot";
import { requireApiKey } from "../src/auth.ts";
import { enqueue, type EnqueueItem } from "../src/enqueue.ts";
import { ApiError, type Issue } from "../src/errors.ts";
import { readJson } from "../src/http.ts";
import { BatchBody, BatchItem, EnqueueBody, parseOptions, toItem } from "../src/options.ts";
import { toIssues } from "../src/registry.ts";
import { relayOf, type AppEnv } from "../src/relay.ts";
import { TASK_STATES } from "../src/store/record.ts";
import { TASK_ID } from "../src/ids.ts";
import { cancelTask, retryTask } from "../src/lifecycle.ts";

const ListQuery = v.object({
  state: v.optional(v.picklist(TASK_STATES, `state must be one of ${TASK_STATES.join(", ")}`)),
  task: v.optional(v.string()),
  cursor: v.optional(v.string()),
  limit: v.optional(
    v.pipe(v.string(), v.transform(Number), v.integer("limit must be an integer"), v.minValue(1), v.maxValue(100)),
    "20",
  ),
});

/** An id never seen is reported as such: 404 and state `unknown`, never "pending". */
const unknownId = (id: string) =>
  Object.assign(new ApiError(404, "unknown", `no task with id ${id} (never enqueued, or expired)`), {
    extra: { id, state: "unknown" },
  });

/** The caller's API: enqueue, batch, status, list, cancel, retry. */
export const tasks = new Hono<AppEnv>()
  .use("*", requireApiKey)
  .post("/:name", async (c) => {
    const relay = relayOf(c);
    const name = c.req.param("name");
    if (!relay.registry.get(name)) throw new ApiError(404, "unknown_task", `no task named "${name}"; known: ${relay.registry.names.join(", ")}`);
    const body = parseOptions(EnqueueBody, await readJson(c));
    const header = c.req.header("idempotency-key");
    if (header !== undefined && body.idempotencyKey !== undefined && header !== body.idempotencyKey) {
      throw new ApiError(400, "invalid_options", "the Idempotency-Key header and idempotencyKey differ");
    }
    if (header !== undefined && (header.length < 1 || header.length > 256)) {
      throw new ApiError(400, "invalid_options", "Idempotency-Key must be 1 to 256 characters");
    }
    const r = await toItem(relay.registry, relay.config, name, { ...body, ...(header ? { idempotencyKey: header } : {}) }, "");
    if ("issues" in r) throw new ApiError(422, "invalid_payload", `the payload does not fit task "${name}"`, r.issues);
    const [e] = await enqueue(relay, c.get("apiKey"), [r.item]);
    if (e!.conflict) throw Object.assign(new ApiError(409, e!.conflict.code, e!.conflict.message), { extra: { id: e!.id } });
    return c.json(e!, e!.duplicate ? 200 : 202);
  })
  .post("/", async (c) => {
    const relay = relayOf(c);
    const { tasks: raw } = parseOptions(BatchBody, await readJson(c));
    const issues: Issue[] = [];
    const items: EnqueueItem[] = [];
    for (const [i, entry] of raw.entries()) {
      const parsed = v.safeParse(BatchItem, entry);
      if (!parsed.success) {
        issues.push(...toIssues(parsed.issues, `tasks.${i}`));
        continue;
      }
      const { task, ...options } = parsed.output;
      const r = await toItem(relay.registry, relay.config, task, options, `tasks.${i}`);
      if ("issues" in r) issues.push(...r.issues);
      else items.push(r.item);
    }
    if (issues.length) {
      throw new ApiError(422, "invalid_batch", `${issues.length} problem(s) in the batch; nothing was enqueued`, issues);
    }
    const enqueued = await enqueue(relay, c.get("apiKey"), items);
    return c.json({ tasks: enqueued }, 202);
  })
  .get("/", async (c) => {
    const relay = relayOf(c);
    const q = v.safeParse(ListQuery, c.req.query());
    if (!q.success) {
      const issues = toIssues(q.issues);
      throw new ApiError(400, "invalid_query", issues.map((i) => `${i.path}: ${i.message}`).join("; "), issues);
    }
    const { state, task, cursor, limit } = q.output;
    if (task !== undefined && !relay.registry.get(task)) throw new ApiError(404, "unknown_task", `no task named "${task}"`);
    try {
      return c.json(
        await relay.store.list({ limit, ...(state ? { state } : {}), ...(task ? { task } : {}), ...(cursor ? { cursor } : {}) }),
      );
    } catch (err) {
      if (err instanceof RangeError) throw new ApiError(400, "invalid_query", `cursor: ${err.message}`);
      throw err;
    }
  })
  .get("/:id", async (c) => c.json((await relayOf(c).store.get(taskId(c.req.param("id")))) ?? notFound(c.req.param("id"))))
  .delete("/:id", async (c) => c.json((await cancelTask(relayOf(c), taskId(c.req.param("id")))) ?? notFound(c.req.param("id"))))
  .post("/:id/retry", async (c) => c.json((await retryTask(relayOf(c), taskId(c.req.param("id")))) ?? notFound(c.req.param("id")), 202));

/** An id that is not a task id was never seen: 404 before any Redis key is built from it. */
function taskId(id: string): string {
  if (!TASK_ID.test(id)) notFound(id);
  return id;
}

function notFound(id: string): never {
  throw unknownId(id);
}
