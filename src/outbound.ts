import { PermanentError } from "./errors.ts";
import { refuseTarget } from "./ssrf.ts";

/**
 * How the runtime makes outbound calls on a caller's behalf (every task's `ctx.fetch`), given
 * the hosts the task allows although private (its `allowHosts`; the webhook task's come from
 * `CELERIAC_WEBHOOK_ALLOW_HOSTS`). The URL's spelling is checked first; then, where the
 * connection is made, every address actually dialled, so a public name that resolves (or
 * rebinds) to a private address is refused too.
 * - Workers: the global fetch; `global_fetch_strictly_public` (wrangler.toml) routes it as a
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
