/**
 * The address a request came from, for per-IP limits. On Workers it is `CF-Connecting-IP`, which
 * Cloudflare sets and a client cannot forge (a request there carries `cf`). Elsewhere a forwarded
 * header counts only when configured as trusted (CELERIAC_TRUSTED_IP_HEADER, set by the proxy in
 * front); else the runtime entry's peer address (src/node.ts, src/deno.ts); else "unknown", which
 * puts such callers in one shared bucket rather than letting a header pick one per request.
 */

/** Where the Node and Deno entries put the socket's peer address on the Request they build. */
export const PEER_ADDRESS = Symbol.for("celeriac.peer-address");

export function clientIp(request: Request, trustedHeader: string): string {
  if ((request as { cf?: unknown }).cf !== undefined) {
    const ip = request.headers.get("cf-connecting-ip");
    if (ip) return ip.trim();
  }
  if (trustedHeader) {
    const value = request.headers.get(trustedHeader);
    // A proxy appends the address it saw: the last entry is the one the trusted proxy wrote.
    const last = value?.split(",").at(-1)?.trim();
    if (last) return last;
  }
  const peer = (request as unknown as Record<symbol, unknown>)[PEER_ADDRESS];
  return typeof peer === "string" && peer ? peer : "unknown";
}
