/** /v2/queues: upsert, list, get, delete, pause, resume. */
import { type Core, type Ctx, fail, ok, type Reply } from "./core.ts";
import { queueJson } from "./views.ts";

function upsert(core: Core, ctx: Ctx): Reply {
  let body: { queueName?: unknown; parallelism?: unknown; paused?: unknown };
  try {
    body = JSON.parse(ctx.body.toString("utf8") || "{}") as typeof body;
  } catch {
    return fail(400, "body must be JSON {queueName, parallelism, paused}");
  }
  if (typeof body.queueName !== "string" || !body.queueName) return fail(400, "queueName is required");
  const parallelism = body.parallelism === undefined ? 1 : Number(body.parallelism);
  if (!Number.isInteger(parallelism) || parallelism < 1) return fail(400, "parallelism must be a positive integer");
  const now = Date.now();
  const prev = core.store.queues.get(body.queueName);
  core.store.queues.set(body.queueName, {
    name: body.queueName,
    parallelism,
    paused: body.paused === true,
    createdAt: prev?.createdAt ?? now,
    updatedAt: now,
  });
  core.store.changed();
  core.dispatcher.lanes.pumpQueue(body.queueName);
  return ok({});
}

export function queueRoutes(core: Core, ctx: Ctx, segs: string[]): Reply | undefined {
  const [name, action] = segs;
  const { method } = ctx;
  if (name === undefined) {
    if (method === "POST") return upsert(core, ctx);
    if (method === "GET") {
      return ok([...core.store.queues.values()].map((q) => queueJson(q, core.dispatcher.lanes.waitingIn(q.name))));
    }
    return undefined;
  }
  const q = core.store.queues.get(name);
  if (action === "pause" || action === "resume") {
    if (method !== "POST" && method !== "PATCH") return undefined;
    if (!q) return fail(404, `queue ${name} not found`);
    q.paused = action === "pause";
    q.updatedAt = Date.now();
    core.store.changed();
    core.dispatcher.lanes.pumpQueue(name);
    return ok({});
  }
  if (action !== undefined) return undefined;
  if (method === "GET") return q ? ok(queueJson(q, core.dispatcher.lanes.waitingIn(name))) : fail(404, `queue ${name} not found`);
  if (method === "DELETE") {
    if (!q) return fail(404, `queue ${name} not found`);
    core.store.queues.delete(name);
    core.store.changed();
    return ok({});
  }
  return undefined;
}
