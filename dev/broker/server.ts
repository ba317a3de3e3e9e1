/** The HTTP front: body reading, auth, routing to the route modules. */
import http from "node:http";
import { readBody } from "../read-body.ts";
import { type Core, type Ctx, fail, ok, type Reply } from "./core.ts";
import { pairsFromRaw } from "./headers.ts";
import { queueRoutes } from "./queues.ts";
import { controlRoutes } from "./routes-control.ts";
import { cancelMany, cancelMessage, deleteDlq, getDlq, getMessage, listDlq, listEvents, retryDlq } from "./routes-manage.ts";
import { batchRoute, enqueueRoute, publishRoute } from "./routes-publish.ts";
import { createSchedule, scheduleRoutes } from "./routes-schedules.ts";

const MAX_REQUEST_BYTES = 11 * 1024 * 1024;

function authorized(core: Core, ctx: Ctx): boolean {
  const auth = ctx.headers.find(([k]) => k.toLowerCase() === "authorization")?.[1];
  if (auth !== undefined && auth.replace(/^Bearer\s+/i, "") === core.token) return true;
  return ctx.query.get("qstash_token") === core.token;
}

function segments(rawPath: string, prefix: string): string[] {
  return rawPath
    .slice(prefix.length)
    .split("/")
    .filter(Boolean)
    .map((s) => decodeURIComponent(s));
}

async function route(core: Core, ctx: Ctx): Promise<Reply | undefined> {
  const { method, rawPath: p } = ctx;
  if (method === "POST" && p.startsWith("/v2/publish/")) return publishRoute(core, ctx);
  if (method === "POST" && p.startsWith("/v2/enqueue/")) return enqueueRoute(core, ctx);
  if (method === "POST" && (p === "/v2/batch" || p === "/v2/batch/")) return batchRoute(core, ctx);
  if (p === "/v2/keys" && method === "GET") return ok(core.keys);
  // The dev keys are fixed, so rotation is a no-op that reports them.
  if (p === "/v2/keys/rotate" && method === "POST") return ok(core.keys);
  if (p === "/v2/events" && method === "GET") return listEvents(core, ctx, "events");
  if (p === "/v2/logs" && method === "GET") return listEvents(core, ctx, "logs");
  if (p.startsWith("/v2/schedules")) {
    const rest = p.slice("/v2/schedules/".length);
    if (method === "POST" && /^https?(:|%3A)/i.test(rest)) return createSchedule(core, ctx, rest);
    return scheduleRoutes(core, ctx, segments(p, "/v2/schedules"));
  }
  if (p.startsWith("/v2/queues")) return queueRoutes(core, ctx, segments(p, "/v2/queues"));
  if (p.startsWith("/v2/messages")) {
    const [id, extra] = segments(p, "/v2/messages");
    if (extra !== undefined) return undefined;
    if (id === undefined) return method === "DELETE" ? cancelMany(core, ctx) : undefined;
    if (method === "GET") return getMessage(core, id);
    if (method === "DELETE") return cancelMessage(core, id);
    return undefined;
  }
  if (p.startsWith("/v2/dlq")) {
    const [a, b, c] = segments(p, "/v2/dlq");
    if (a === "retry" && method === "POST" && c === undefined) return retryDlq(core, ctx, b);
    if (a === undefined && method === "GET") return listDlq(core, ctx);
    if (a === undefined && method === "DELETE") return deleteDlq(core, ctx);
    if (a !== undefined && b === undefined && method === "GET") return getDlq(core, a);
    if (a !== undefined && b === undefined && method === "DELETE") return deleteDlq(core, ctx, a);
    return undefined;
  }
  if (p.startsWith("/v2/topics")) return fail(404, "url groups are not supported by the local broker");
  if (p.startsWith("/_broker/")) return controlRoutes(core, ctx, segments(p, "/_broker"));
  return undefined;
}

export function createServer(core: Core): http.Server {
  return http.createServer((req, res) => {
    void readBody(req, MAX_REQUEST_BYTES).then(
      (body) => {
        const target = req.url ?? "/";
        const q = target.indexOf("?");
        const ctx: Ctx = {
          method: (req.method ?? "GET").toUpperCase(),
          rawPath: q < 0 ? target : target.slice(0, q),
          rawQuery: q < 0 ? undefined : target.slice(q + 1),
          query: new URLSearchParams(q < 0 ? "" : target.slice(q + 1)),
          headers: pairsFromRaw(req.rawHeaders),
          body: body ?? Buffer.alloc(0),
          ip: (req.socket.remoteAddress ?? "").replace(/^::ffff:/, ""),
        };
        const send = (r: Reply) => {
          const text = r.json === undefined ? "" : JSON.stringify(r.json);
          res.writeHead(r.status, { "Content-Type": "application/json" });
          res.end(text);
        };
        if (body === null) return send(fail(413, "request body too large"));
        if (ctx.rawPath === "/" || ctx.rawPath === "/healthz") return send(ok({ ok: true, service: "celeriac qstash broker" }));
        if (!authorized(core, ctx)) return send(fail(401, "unauthorized: a valid Bearer token (or ?qstash_token=) is required"));
        route(core, ctx)
          .then((r) => send(r ?? fail(404, `no route for ${ctx.method} ${ctx.rawPath}`)))
          .catch((e: unknown) => {
            console.error(`[celeriac:broker] ${ctx.method} ${ctx.rawPath} failed:`, e);
            send(fail(500, `internal broker error: ${String(e)}`));
          });
      },
      () => res.destroy(),
    ); // the client went away mid-body
  });
}
