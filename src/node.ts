// Node entry: serves the same app with node:http, bindings read from process.env per request.
// Run: `node src/node.ts` (Node >= 22.12, which runs TypeScript directly). PORT, default 8787.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { Readable } from "node:stream";
import { createApp, type AppOptions } from "./app.ts";

/** Options for {@link serveNode}. */
export interface NodeServeOptions {
  /** @default 8787 (0 picks a free port) */
  port?: number;
  /** @default "127.0.0.1" */
  host?: string;
  /** Bindings, asked for on every request. @default process.env */
  env?: () => Record<string, unknown>;
  /** Task types to serve. @default every task in tasks/ */
  tasks?: AppOptions["tasks"];
}

export function serveNode(options: NodeServeOptions = {}) {
  const app = createApp(options.tasks ? { tasks: options.tasks } : {});
  // process.env itself, not a copy: the config and client caches are keyed by the env object.
  const env = options.env ?? (() => process.env);
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    try {
      const url = `http://${req.headers.host ?? "localhost"}${req.url ?? "/"}`;
      const hasBody = req.method !== "GET" && req.method !== "HEAD";
      const request = new Request(url, {
        method: req.method ?? "GET",
        headers: req.headers as Record<string, string>,
        ...(hasBody ? { body: Readable.toWeb(req) as ReadableStream, duplex: "half" } : {}),
      });
      const response = await app.fetch(request, env());
      res.writeHead(response.status, Object.fromEntries(response.headers));
      if (response.body) for await (const chunk of response.body) res.write(chunk);
      res.end();
    } catch (err) {
      console.error("[celeriac] node adapter error", err);
      if (!res.headersSent) res.writeHead(500, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { code: "internal", message: "[celeriac] internal error" } }));
    }
  });
  return new Promise<{ url: string; close: () => Promise<void> }>((resolve) => {
    server.listen(options.port ?? 8787, options.host ?? "127.0.0.1", () => {
      const addr = server.address();
      const port = typeof addr === "object" && addr ? addr.port : options.port;
      resolve({
        url: `http://${options.host ?? "127.0.0.1"}:${port}`,
        close: () => new Promise<void>((done) => server.close(() => done())),
      });
    });
  });
}

/**
 * `node src/node.ts sync-schedules`: makes QStash's schedules match the code, reading the same
 * variables as the Worker from the process env (e.g. `node --env-file=.dev.vars …`).
 */
async function syncSchedulesCli() {
  const key = (process.env.CELERIAC_API_KEYS ?? "").split(",")[0]?.split(":").slice(1).join(":") ?? "";
  const res = await createApp().request(
    "/v1/schedules/sync",
    { method: "POST", headers: { authorization: `Bearer ${key}` } },
    { ...process.env },
  );
  const body = await res.json();
  console.log(JSON.stringify(body, null, 2));
  if (!res.ok) process.exitCode = 1;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (process.argv[2] === "sync-schedules") await syncSchedulesCli();
  else {
    const { url } = await serveNode({ port: Number(process.env.PORT ?? 8787) });
    console.log(`[celeriac] Node server on ${url}`);
  }
}
