// Node entry: serves the same app through @hono/node-server (Hono's maintained adapter: streamed
// bodies, several Set-Cookie headers, client aborts), bindings read from process.env per request.
// Run: `npm run start:node` (Node >= 22.12, which runs TypeScript directly). PORT, default 8787;
// `--env-file <path>` loads variables from a file first (the process env wins over it).
import { serve, type Http2Bindings, type HttpBindings } from "@hono/node-server";
import { realpathSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { pathToFileURL } from "node:url";
import { createApp, type AppOptions } from "./app.ts";
import { PEER_ADDRESS } from "./client-ip.ts";
import { ConfigError, loadConfig } from "./env.ts";

/** What {@link serveNode} serves: a fetch handler with bindings, such as a Hono app. */
export interface FetchApp {
  fetch(request: Request, env: Record<string, unknown>): Response | Promise<Response>;
}

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
  /** The app to serve. @default createApp({ tasks }) @example new Hono().get("/", (c) => c.text("hi")) */
  app?: FetchApp;
}

export function serveNode(options: NodeServeOptions = {}) {
  const app = options.app ?? createApp(options.tasks ? { tasks: options.tasks } : {});
  // process.env itself, not a copy: the config and client caches are keyed by the env object.
  const env = options.env ?? (() => process.env);
  const host = options.host ?? "127.0.0.1";
  return new Promise<{ url: string; close: () => Promise<void> }>((resolve, reject) => {
    const fetch = (request: Request, node: HttpBindings | Http2Bindings) => {
      // The socket's peer address, for per-IP limits: a property, so no header can forge it.
      Object.defineProperty(request, PEER_ADDRESS, { value: node.incoming.socket.remoteAddress ?? "" });
      return app.fetch(request, env());
    };
    const server = serve({ fetch, port: options.port ?? 8787, hostname: host }, (info: AddressInfo) =>
      resolve({
        url: `http://${host}:${info.port}`,
        close: () => new Promise<void>((done) => server.close(() => done())),
      }),
    );
    server.once("error", reject);
  });
}

/**
 * `node src/node.ts sync-schedules`: makes QStash's schedules match the code, reading the same
 * variables as the Worker from the process env (e.g. `npm run schedules:sync -- --env-file .dev.vars`).
 */
async function syncSchedulesCli() {
  const env = { ...process.env };
  let key: string;
  try {
    key = loadConfig(env).apiKeys[0]!.key; // parsed as the Worker parses it
  } catch (err) {
    console.error(err instanceof ConfigError ? err.message : err);
    process.exitCode = 1;
    return;
  }
  const res = await createApp().request("/v1/schedules/sync", { method: "POST", headers: { authorization: `Bearer ${key}` } }, env);
  const body = await res.json();
  console.log(JSON.stringify(body, null, 2));
  if (!res.ok) process.exitCode = 1;
}

// Compared as real file URLs: a checkout whose path holds a space (percent-encoded in the URL) or
// is reached through a symlink otherwise served nothing and exited 0.
const main = process.argv[1];
if (main !== undefined && import.meta.url === pathToFileURL(realpathSync(main)).href) {
  const args = process.argv.slice(2);
  const at = args.indexOf("--env-file");
  if (at >= 0) {
    const file = args[at + 1];
    if (!file) throw new Error("[celeriac] --env-file needs a path");
    process.loadEnvFile(file);
    args.splice(at, 2);
  }
  if (args[0] === "sync-schedules") await syncSchedulesCli();
  else {
    const { url } = await serveNode({ port: Number(process.env.PORT ?? 8787) });
    console.log(`[celeriac] Node server on ${url}`);
  }
}
