import { PermanentError } from "./errors.ts";
import { refuseTarget } from "./ssrf.ts";

/**
 * How the runtime makes outbound calls on a caller's behalf (every task's `ctx.fetch`), given
 * the hosts the task allows although private (its `allowHosts`; the webhook task's come from
 * `CELERIAC_WEBHOOK_ALLOW_HOSTS`). The URL's spelling is checked first; then, where the
 * connection is made, every address actually dialled, so a public name that resolves (or
 * rebinds) to a private address is refused too.
 * - Workers: the global fetch; `global_fetch_strictly_public` (wrangler.jsonc) routes it as a
 *   request from the internet, and Cloudflare does not connect to private addresses.
 * - Node: `src/node.ts` checks each address its resolver returns, inside the connection's lookup.
 * - Deno: `src/deno.ts` resolves and checks every address before the call.
 * @default the global fetch (Workers)
 * @example createApp({ outbound: (allow) => myCheckedFetch(allow) })
 */
export type OutboundFetch = (allowHosts: readonly string[]) => typeof fetch;

/** The Workers default: the platform enforces public routing (see {@link OutboundFetch}). */
export const platformFetch: OutboundFetch = () => (input, init) => fetch(input, init); // unbound: workerd refuses another `this`

/** The URL of a fetch input. */
export const urlOf = (input: RequestInfo | URL): URL => new URL(input instanceof Request ? input.url : String(input));

/** Refuses a call whose URL the guard refuses (also for a caller that skipped the task's check). */
export function checkedUrl(input: RequestInfo | URL, allowHosts: readonly string[]): URL {
  const url = urlOf(input);
  const why = refuseTarget(url.href, allowHosts);
  if (why) throw new OutboundRefused(`[celeriac] ${why}`);
  return url;
}

/** An outbound call refused by the SSRF guard: fails for good (its target is not for us to call). */
export class OutboundRefused extends PermanentError {
  override name = "OutboundRefused";
  constructor(message: string) {
    super(message, "target_refused");
  }
}

/** The guard's refusal behind a failed fetch (runtimes wrap connect errors as `cause`). */
export function refusalOf(err: unknown): OutboundRefused | undefined {
  for (let e = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof OutboundRefused) return e;
  }
  return undefined;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** Most redirects one call follows, as fetch allows. */
const MAX_REDIRECTS = 20;

/**
 * fetch's redirect following, done here so that each hop goes through `once` (which checks its
 * target), for a runtime whose fetch would follow redirects unchecked (Deno). Only for
 * `redirect: "follow"`, fetch's default. As fetch does: a 303, and a 301 or 302 after a POST,
 * go on as a GET without a body; credentials are dropped when a hop leaves the origin.
 */
export async function followChecked(once: typeof fetch, input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
  const first = new Request(input, init);
  if (first.redirect !== "follow") return once(first);
  let url = new URL(first.url);
  let method = first.method;
  const headers = new Headers(first.headers);
  let body: ArrayBuffer | null = first.body ? await first.arrayBuffer() : null;
  for (let hop = 0; ; hop++) {
    const res = await once(url, { method, headers, body, signal: first.signal, redirect: "manual" });
    const location = res.headers.get("location");
    if (!REDIRECTS.has(res.status) || location === null) return res;
    await res.body?.cancel();
    if (hop === MAX_REDIRECTS) throw new TypeError(`[celeriac] more than ${MAX_REDIRECTS} redirects from ${first.url}`);
    const next = new URL(location, url);
    if (res.status === 303 ? method !== "GET" && method !== "HEAD" : (res.status === 301 || res.status === 302) && method === "POST") {
      method = "GET";
      body = null;
      for (const h of ["content-type", "content-length", "content-encoding", "content-language", "content-location"]) headers.delete(h);
    }
    if (next.origin !== url.origin) for (const h of ["authorization", "cookie", "proxy-authorization"]) headers.delete(h);
    url = next;
  }
}
