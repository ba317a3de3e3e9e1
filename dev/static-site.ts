// Serves a folder of static files on an origin of its own (the demo pages under examples/), so a
// browser calls the Worker cross-origin as a real frontend would. GET and HEAD only, no listing.

import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { extname, join, normalize, sep } from "node:path";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".json": "application/json",
};

export interface StaticSite {
  /** The site's origin, e.g. http://127.0.0.1:5500 (no trailing slash). */
  url: string;
  close(): Promise<void>;
}

/**
 * Serves `dir`; `inject` is added to every HTML page's <head> as a `<meta name="celeriac-url">`
 * so the page knows where the Worker is without a build step.
 */
export async function startStaticSite(opts: { dir: string; port?: number; host?: string; workerUrl: string }): Promise<StaticSite> {
  const host = opts.host ?? "127.0.0.1";
  const root = normalize(opts.dir + sep);
  const server = createServer(async (req, res) => {
    if (req.method !== "GET" && req.method !== "HEAD") return void res.writeHead(405, { allow: "GET, HEAD" }).end();
    let path: string;
    try {
      path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    } catch {
      // A malformed escape (`/%E0`) is the caller's mistake; thrown here it would take the stack down.
      return void res.writeHead(400, { "content-type": "text/plain" }).end("malformed path");
    }
    const file = normalize(join(root, path.endsWith("/") ? `${path}index.html` : path));
    if (!file.startsWith(root)) return void res.writeHead(404).end();
    try {
      let body: Buffer | string = await readFile(file);
      const type = TYPES[extname(file)] ?? "application/octet-stream";
      if (type.startsWith("text/html")) {
        body = body.toString("utf8").replace("<head>", `<head>\n<meta name="celeriac-url" content="${opts.workerUrl}">`);
      }
      res.writeHead(200, { "content-type": type, "cache-control": "no-store" }).end(req.method === "HEAD" ? undefined : body);
    } catch {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found");
    }
  });
  await new Promise<void>((done, failed) => {
    server.once("error", failed);
    server.listen(opts.port ?? 0, host, () => (server.off("error", failed), done()));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((done) => {
        server.close(() => done());
        server.closeAllConnections();
      }),
  };
}
