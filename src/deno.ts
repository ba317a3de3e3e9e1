// Deno entry: `deno run --allow-net --allow-env src/deno.ts`. PORT, default 8787.
// Bindings are Deno's env, read once as one object: the config, client and task-env caches are
// keyed by the env object, and a fresh copy per request parsed them all again on every request.
import { createApp } from "./app.ts";
import { PEER_ADDRESS } from "./client-ip.ts";

declare const Deno: {
  serve(options: { port: number; hostname: string; onListen?: (a: { port: number }) => void }, handler: (r: Request, info: { remoteAddr: { hostname: string } }) => Response | Promise<Response>): unknown;
  env: { toObject(): Record<string, string>; get(name: string): string | undefined };
};

const app = createApp();
let env: Record<string, string> | undefined;
Deno.serve(
  {
    port: Number(Deno.env.get("PORT") ?? 8787),
    hostname: Deno.env.get("HOST") ?? "127.0.0.1",
    onListen: ({ port }) => console.log(`[celeriac] Deno server on http://127.0.0.1:${port}`),
  },
  (request, info) => {
    // The socket's peer address, for per-IP limits: a property, so no header can forge it.
    Object.defineProperty(request, PEER_ADDRESS, { value: info.remoteAddr.hostname });
    return app.fetch(request, (env ??= Deno.env.toObject()));
  },
);
