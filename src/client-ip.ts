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

/**
 * The bucket a client address counts in for per-IP limits. An IPv6 address counts by its /64 (the
 * usual allocation of one subscriber, who could otherwise take a fresh address for every call),
 * written one way however it was spelled; an IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, as a
 * dual-stack socket reports IPv4 peers) counts as the IPv4 address. Anything else is kept as is.
 */
export function ipBucket(ip: string): string {
  const s = ip
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, "$1")
    .replace(/%.*$/, "");
  const g = ipv6Groups(s);
  if (!g) return s;
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) return [g[6]! >> 8, g[6]! & 255, g[7]! >> 8, g[7]! & 255].join(".");
  return `${g
    .slice(0, 4)
    .map((x) => x.toString(16))
    .join(":")}::/64`;
}

/** The eight 16-bit groups of an IPv6 address (`::` and a dotted IPv4 tail allowed), or undefined. */
function ipv6Groups(address: string): number[] | undefined {
  if (!address.includes(":")) return undefined;
  let s = address;
  const v4 = /(?:^|:)(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (v4) {
    const b = v4.slice(1).map(Number);
    if (b.some((x) => x > 255)) return undefined;
    s = `${s.slice(0, s.length - v4[0].length + (v4[0].startsWith(":") ? 1 : 0))}${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const halves = s.split("::");
  if (halves.length > 2) return undefined;
  const parts = halves.map((h) => (h ? h.split(":") : []));
  if (parts.flat().some((p) => !/^[0-9a-f]{1,4}$/.test(p))) return undefined;
  const [head, tail] = [parts[0]!, parts[1]];
  const n = head.length + (tail?.length ?? 0);
  if (tail ? n > 7 : n !== 8) return undefined;
  return [...head, ...Array<string>(8 - n).fill("0"), ...(tail ?? [])].map((p) => parseInt(p, 16));
}
