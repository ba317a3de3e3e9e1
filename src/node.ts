// Node entry: serves the same app through @hono/node-server (Hono's maintained adapter: streamed
// bodies, several Set-Cookie headers, client aborts), bindings read from process.env per request.
// Run: `npm run start:node` (Node >= 22.12, which runs TypeScript directly). PORT, default 8787;
// `--env-file <path>` loads variables from a file first (the process env wins over it).

import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from "node:dns";
import { realpathSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { pathToFileURL } from "node:url";
import { type Http2Bindings, type HttpBindings, serve } from "@hono/node-server";
import { Agent, buildConnector } from "undici";
import { type AppOptions, createApp } from "./app.ts";
import { PEER_ADDRESS } from "./client-ip.ts";
import { ConfigError, loadConfig } from "./env.ts";
import { checkedUrl, type OutboundFetch, OutboundRefused } from "./outbound.ts";
import { classifyAddress, classifyHost, isAllowed } from "./ssrf.ts";

/** A resolver with `dns.lookup`'s shape (`all: true` form), replaceable to test rebinding. */
export type Resolve = (
  host: string,
  options: LookupOptions & { all: true },
  done: (err: Error | null, addresses: LookupAddress[]) => void,
) => void;

/**
 * Node's checked fetch for calls on a caller's behalf: every connection, the first and each
 * followed redirect's, is checked where it is made, by its own host. An allow-listed host
 * connects as is; any other is refused when its name or IP literal is (Node dials a literal
 * without a lookup), and a name's every address is checked inside the connection's own lookup,
 * so the address checked is the address dialled (no window for DNS rebinding).
 */
export function guardedFetch(resolve: Resolve = dnsLookup as unknown as Resolve): OutboundFetch {
  const lookup = (checked: boolean) => (host: string, options: LookupOptions, done: (...a: unknown[]) => void) =>
    resolve(host, { ...options, all: true }, (err, addresses) => {
      if (err) return done(err);
      for (const a of checked ? addresses : []) {
        const why = classifyAddress(a.address);
        if (why) return done(new OutboundRefused(`[celeriac] refused: ${host} resolves to ${a.address}, ${why}; allow-list it to call it`));
      }
      if (options.all) return done(null, addresses);
      const first = addresses[0];
      return first
        ? done(null, first.address, first.family)
        : done(Object.assign(new Error(`no address for ${host}`), { code: "ENOTFOUND" }));
    });
  const checked = buildConnector({ lookup: lookup(true) } as object);
  const open = buildConnector({ lookup: lookup(false) } as object);
  const byList = new Map<string, typeof fetch>();
  return (allowHosts) => {
    const key = allowHosts.join(",");
    let f = byList.get(key);
    if (!f) {
      const connect: buildConnector.connector = (opts, done) => {
        const host = opts.hostname.includes(":") ? `[${opts.hostname}]` : opts.hostname;
        const target = new URL(`${opts.protocol}//${host}${opts.port ? `:${opts.port}` : ""}/`);
        if (isAllowed(target, allowHosts)) return open(opts, done);
        const why = classifyHost(opts.hostname);
        if (why) return done(new OutboundRefused(`[celeriac] refused: ${opts.hostname} is ${why}; allow-list it to call it`), null);
        return checked(opts, done);
      };
      const agent = new Agent({ connect });
      f = ((input: RequestInfo | URL, init?: RequestInit) => {
        checkedUrl(input, allowHosts);
        return fetch(input, { ...init, dispatcher: agent } as RequestInit);
      }) as typeof fetch;
      byList.set(key, f);
    }
    return f;
  };
}

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
  /** How names of outbound calls are resolved (tests stand in for DNS). @default dns.lookup */
  resolve?: Resolve;
}

export function serveNode(options: NodeServeOptions = {}) {
  const app = options.app ?? createApp({ ...(options.tasks ? { tasks: options.tasks } : {}), outbound: guardedFetch(options.resolve) });
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
