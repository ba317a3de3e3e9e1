// Deno entry: `deno run --allow-net --allow-env src/deno.ts`. PORT, default 8787.
// Bindings are Deno's env, read once as one object: the config, client and task-env caches are
// keyed by the env object, and a fresh copy per request parsed them all again on every request.
import { lookup } from "node:dns/promises";
import { createApp } from "./app.ts";
import { PEER_ADDRESS } from "./client-ip.ts";
import { checkedUrl, followChecked, type OutboundFetch, OutboundRefused } from "./outbound.ts";
import { classifyAddress, isAllowed } from "./ssrf.ts";

declare const Deno: {
  serve(
    options: { port: number; hostname: string; onListen?: (a: { port: number }) => void },
    handler: (r: Request, info: { remoteAddr: { hostname: string } }) => Response | Promise<Response>,
  ): unknown;
  env: { toObject(): Record<string, string>; get(name: string): string | undefined };
};

/**
 * Deno's checked fetch for calls on a caller's behalf: every address the system resolver gives
 * for the name (the resolver Deno's fetch uses, /etc/hosts included) is checked before the
 * call, and so is each redirect's target (followed here, not by fetch). Deno's fetch has no hook into its own resolver, so a name that changes its answer
 * between this check and the connection (DNS rebinding within the record's TTL) is the one case
 * not covered here; Node and Workers check at the connection itself.
 */
const denoFetch: OutboundFetch = (allowHosts) => {
  const once = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = checkedUrl(input, allowHosts);
    const host = url.hostname.replace(/^\[|\]$/g, "");
    const literal = host.includes(":") || /^\d+\.\d+\.\d+\.\d+$/.test(host);
    if (!literal && !isAllowed(url, allowHosts)) {
      // A name that does not resolve fails in fetch itself, as it would anywhere.
      const found = await lookup(host, { all: true }).catch(() => []);
      for (const { address } of found) {
        const why = classifyAddress(address);
        if (why) throw new OutboundRefused(`[celeriac] refused: ${host} resolves to ${address}, ${why}; allow-list it to call it`);
      }
    }
    return fetch(input, init);
  }) as typeof fetch;
  // Deno's fetch would follow a redirect to any address: each hop is checked as the first was.
  return ((input: RequestInfo | URL, init?: RequestInit) => followChecked(once, input, init)) as typeof fetch;
};

const app = createApp({ outbound: denoFetch });
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
