import { Hono } from "hono";
import { withCallbacks } from "../src/callbacks.ts";
import { enqueueBatch, enqueueOne } from "../src/enqueue.ts";
import { ApiError, unknownId } from "../src/errors.ts";
import { readJson } from "../src/http.ts";
import { TASK_ID } from "../src/ids.ts";
import { cancelTask, retryTask } from "../src/lifecycle.ts";
import { listTasks } from "../src/list.ts";
import { type AppEnv, relayOf } from "../src/relay.ts";

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);

/** The caller's API: enqueue, batch, status, list, cancel, retry. */
export const tasks = new Hono<AppEnv>()
  .post("/:name", async (c) => {
    const body = await readJson(c);
    const header = c.req.header("idempotency-key");
    if (header !== undefined && isObject(body)) {
      if (body.idempotencyKey !== undefined && body.idempotencyKey !== header) {
        throw new ApiError(400, { code: "invalid_options", message: "the Idempotency-Key header and idempotencyKey differ" });
      }
      body.idempotencyKey = header;
    }
    const e = await enqueueOne(relayOf(c), c.get("apiKey"), c.req.param("name"), body);
    return c.json(e, e.duplicate ? 200 : 202);
  })
  .post("/", async (c) => c.json({ tasks: await enqueueBatch(relayOf(c), c.get("apiKey"), await readJson(c)) }, 202))
  .get("/", async (c) => c.json(await listTasks(relayOf(c), c.req.query())))
  .get("/:id", async (c) => {
    const relay = relayOf(c);
    const rec = (await relay.store.get(taskId(c.req.param("id")))) ?? notFound(c.req.param("id"));
    return c.json(await withCallbacks(relay.store, rec));
  })
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
