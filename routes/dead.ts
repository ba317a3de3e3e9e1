import { Hono } from "hono";
import * as v from "valibot";
import { deadLetters, discardDeadLetter, replayDead, replayMatching } from "../src/dead-letters.ts";
import { ApiError, unknownId } from "../src/errors.ts";
import { readJson } from "../src/http.ts";
import { TASK_ID } from "../src/ids.ts";
import { instant, parseOptions, parseQuery } from "../src/options.ts";
import { type AppEnv, relayOf } from "../src/relay.ts";

/** `since` in a query string: unix seconds or an ISO date. */
const since = v.pipe(
  v.string(),
  v.transform((s) => (/^\d+$/.test(s) ? Number(s) : s)),
  instant("since"),
);
const code = v.pipe(v.string(), v.regex(/^[\w.-]{1,100}$/, "code must be an error code such as http_400"));
const taskName = v.pipe(v.string(), v.regex(/^[a-z][a-z0-9-]*$/, "task must be a task name"));

const ListQuery = v.object({
  task: v.optional(taskName),
  code: v.optional(code),
  since: v.optional(since),
  cursor: v.optional(v.string()),
  limit: v.optional(v.pipe(v.string(), v.transform(Number), v.integer("limit must be an integer"), v.minValue(1), v.maxValue(100)), "20"),
});

const ReplayBody = v.strictObject(
  {
    filter: v.optional(
      v.strictObject(
        { task: v.optional(taskName), code: v.optional(code), since: v.optional(v.union([v.number(), v.string()])) },
        "filter must be an object with task, code and/or since",
      ),
      {},
    ),
    dryRun: v.optional(v.boolean("dryRun must be true or false"), false),
  },
  "expected a JSON object { filter?, dryRun? }",
);

const unknown = (id: string): never => {
  throw unknownId(id);
};
const taskId = (id: string) => (TASK_ID.test(id) ? id : unknown(id));

/** Dead letters: failed tasks, listed, replayed (one or by filter) and discarded. */
export const dead = new Hono<AppEnv>()
  .get("/", async (c) => {
    const relay = relayOf(c);
    const q = parseQuery(ListQuery, c.req.query());
    if (q.task !== undefined && !relay.registry.get(q.task))
      throw new ApiError(404, { code: "unknown_task", message: `no task named "${q.task}"` });
    try {
      return c.json(await deadLetters(relay, q));
    } catch (err) {
      if (err instanceof RangeError) throw new ApiError(400, { code: "invalid_query", message: `cursor: ${err.message}` });
      throw err;
    }
  })
  .post("/replay", async (c) => {
    const relay = relayOf(c);
    const body = parseOptions(ReplayBody, await readJson(c));
    const f = body.filter;
    if (f.task !== undefined && !relay.registry.get(f.task))
      throw new ApiError(404, { code: "unknown_task", message: `no task named "${f.task}"` });
    const at = f.since === undefined ? undefined : v.safeParse(instant("filter.since"), f.since);
    if (at && !at.success)
      throw new ApiError(400, {
        code: "invalid_options",
        message: at.issues[0].message,
        issues: [{ path: "filter.since", message: at.issues[0].message }],
      });
    const filter = {
      ...(f.task ? { task: f.task } : {}),
      ...(f.code ? { code: f.code } : {}),
      ...(at?.success ? { since: at.output } : {}),
    };
    return c.json(await replayMatching(relay, filter, body.dryRun), body.dryRun ? 200 : 202);
  })
  .post("/:id/replay", async (c) => c.json((await replayDead(relayOf(c), taskId(c.req.param("id")))) ?? unknown(c.req.param("id")), 202))
  .delete("/:id", async (c) => c.json((await discardDeadLetter(relayOf(c), taskId(c.req.param("id")))) ?? unknown(c.req.param("id"))));
