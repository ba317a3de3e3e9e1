// SSRF guard for outbound calls made on a caller's behalf (the webhook task). Pure functions: the
// WHATWG URL parser first normalises every numeric trick (2130706433, 0x7f.1, 0177.0.0.1, 127.1,
// %31%32%37.0.0.1, [::ffff:127.0.0.1]) into one canonical form, then the host is classified.
// It cannot see DNS: a public name that resolves to a private address is caught where the
// connection is made (`global_fetch_strictly_public` on Workers, a checked resolver on Node and
// Deno: see `OutboundFetch`), with {@link classifyAddress} on every address actually dialled.

const LOOPBACK = "a loopback address";
const PRIVATE = "a private network address";
const LINK_LOCAL = "a link-local address";
const METADATA = "a cloud metadata endpoint";
const RESERVED = "a reserved address";

/** IPv4 ranges that must not be called: [first address, prefix length, why]; first match wins. */
const V4: [string, number, string][] = [
  ["0.0.0.0", 8, "an unspecified (this-network) address"],
  ["10.0.0.0", 8, PRIVATE],
  ["100.64.0.0", 10, "a carrier-grade NAT address"],
  ["127.0.0.0", 8, LOOPBACK],
  ["169.254.169.254", 32, METADATA],
  ["169.254.0.0", 16, LINK_LOCAL],
  ["172.16.0.0", 12, PRIVATE],
  ["192.0.0.0", 24, RESERVED],
  ["192.0.2.0", 24, RESERVED],
  ["192.168.0.0", 16, PRIVATE],
  ["198.18.0.0", 15, RESERVED],
  ["198.51.100.0", 24, RESERVED],
  ["203.0.113.0", 24, RESERVED],
  ["224.0.0.0", 4, "a multicast address"],
  ["240.0.0.0", 4, RESERVED], // includes the broadcast address 255.255.255.255
];
const v4ToInt = (s: string) => s.split(".").reduce((n, part) => n * 256 + Number(part), 0);
const V4_RANGES = V4.map(([base, bits, why]) => ({ base: v4ToInt(base), size: 2 ** (32 - bits), why }));

/** Names that reach the machine itself or its provider's internals whatever DNS says. */
function classifyName(name: string): string | undefined {
  if (name === "localhost" || name.endsWith(".localhost")) return LOOPBACK;
  if (name === "localdomain" || name.endsWith(".localdomain")) return LOOPBACK; // localhost.localdomain
  if (name === "metadata" || name === "metadata.google.internal" || name === "instance-data") return METADATA;
  if (name.endsWith(".internal")) return "an internal name";
  if (name.endsWith(".local")) return "a local-network (mDNS) name";
  if (name === "home.arpa" || name.endsWith(".home.arpa")) return "a home-network name";
  // A single label is completed by the resolver's search domains: it names a host of the
  // network the relay runs in, never one on the internet.
  if (!name.includes(".")) return "a single-label name (resolved only inside a private network)";
  return undefined;
}

function classifyV4(n: number): string | undefined {
  return V4_RANGES.find((r) => n >= r.base && n < r.base + r.size)?.why;
}

/** Eight 16-bit groups of a canonical (URL-serialised, so hex-only) IPv6 address. */
function v6Groups(addr: string): number[] {
  const [head = "", tail] = addr.split("::");
  const hex = (s: string) => (s ? s.split(":").map((g) => parseInt(g, 16)) : []);
  const h = hex(head);
  const t = tail === undefined ? [] : hex(tail);
  return [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
}

function classifyV6(g: number[]): string | undefined {
  const [g0 = 0, g1 = 0, g2 = 0, , , g5 = 0, g6 = 0, g7 = 0] = g;
  const zeros = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  const embedded = (hi: number, lo: number) => {
    // An IPv6 form of an IPv4 address is as dangerous as the IPv4 address itself.
    const why = classifyV4(hi * 65_536 + lo);
    return why && `${why} (IPv4 ${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255} inside IPv6)`;
  };
  if (zeros(0, 8)) return "an unspecified address";
  if (zeros(0, 7) && g7 === 1) return LOOPBACK;
  if (zeros(0, 5) && g5 === 0xffff) return embedded(g6, g7); // ::ffff:a.b.c.d (IPv4-mapped)
  if (zeros(0, 4) && g[4] === 0xffff && g5 === 0) return embedded(g6, g7); // ::ffff:0:a.b.c.d (IPv4-translated)
  if (zeros(0, 6)) return embedded(g6, g7); // ::a.b.c.d (IPv4-compatible, deprecated)
  if (g0 === 0x64 && g1 === 0xff9b && zeros(2, 6)) return embedded(g6, g7); // NAT64
  // Local-use NAT64 (64:ff9b:1::/48) translates into whatever network the operator chose.
  if (g0 === 0x64 && g1 === 0xff9b && g2 === 1) return "a local-use NAT64 address";
  if (g0 === 0x0100 && zeros(1, 4)) return RESERVED; // 100::/64 discard-only
  if (g0 === 0x2001 && g1 === 0) return "a Teredo tunnel address"; // 2001::/32 hides an IPv4 address
  if (g0 === 0x2002) return embedded(g1, g2); // 6to4
  if ((g0 & 0xfe00) === 0xfc00) return PRIVATE; // fc00::/7 unique local
  if ((g0 & 0xffc0) === 0xfe80) return LINK_LOCAL; // fe80::/10
  if ((g0 & 0xffc0) === 0xfec0) return PRIVATE; // fec0::/10 site-local, deprecated
  if ((g0 & 0xff00) === 0xff00) return "a multicast address";
  if (g0 === 0x2001 && g1 === 0x0db8) return RESERVED; // documentation
  return undefined;
}

/**
 * A host as the URL parser writes it: lower case, punycode, IPv4 dotted, IPv6 in brackets, and
 * without trailing dots (`127.0.0.1..` and `localhost..` reach what `127.0.0.1` and `localhost` do).
 */
function canonicalHost(host: string): string | undefined {
  const bracketed = host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
  try {
    const h = new URL(`http://${bracketed}/`).hostname;
    const bare = h.replace(/\.+$/, "");
    // Parsed again without the dots, so a numeric host becomes the IPv4 address it is.
    return bare === h || bare === "" ? bare : new URL(`http://${bare}/`).hostname;
  } catch {
    return undefined;
  }
}

/**
 * Why a host must not be called (e.g. "a loopback address"), or undefined for a public one.
 * Accepts any spelling the URL parser accepts (`0x7f.1`, `::1`, `[::1]`, `LOCALHOST.`).
 */
export function classifyHost(host: string): string | undefined {
  const h = canonicalHost(host);
  if (h === undefined || h === "") return "not a valid host";
  if (h.startsWith("[")) return classifyV6(v6Groups(h.slice(1, -1)));
  if (/^\d+\.\d+\.\d+\.\d+$/.test(h)) return classifyV4(v4ToInt(h));
  return classifyName(h);
}

/**
 * Why a resolved IP address (as `dns.lookup` or `Deno.resolveDns` return it: `127.0.0.1`,
 * `::1`) must not be connected to, or undefined for a public one.
 */
export function classifyAddress(ip: string): string | undefined {
  const bare = ip.replace(/%.*$/, ""); // a zone id (fe80::1%eth0) says nothing about the address
  if (!bare.includes(":") && !/^\d+\.\d+\.\d+\.\d+$/.test(bare)) return "not an IP address";
  return classifyHost(bare);
}

/**
 * Whether `allowHosts` names the URL's host: an entry `host` allows every port, `host:port` only
 * that port (the scheme's default when the URL names none). Entries are spelt like hosts in URLs
 * (`[::1]:8080`); a bare IPv6 address (`::1`) is accepted too.
 */
export function isAllowed(url: URL, allowHosts: readonly string[]): boolean {
  const host = canonicalHost(url.hostname);
  const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
  return allowHosts.some((entry) => {
    const bareV6 = !entry.startsWith("[") && entry.indexOf(":") !== entry.lastIndexOf(":");
    const spec = bareV6 ? `[${entry}]` : entry;
    const wantPort = /:(\d+)$/.exec(spec)?.[1];
    const name = canonicalHost(wantPort ? spec.slice(0, -wantPort.length - 1) : spec);
    return name === host && (wantPort === undefined || Number(wantPort) === port);
  });
}

/** Parses a URL for an outbound call: the URL, or why it cannot be one. */
export function parseTarget(raw: string): URL | string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return "is not a valid absolute URL";
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return `uses ${url.protocol} (only http and https)`;
  // Credentials in a URL end up in logs and records; they belong in an Authorization header.
  if (url.username || url.password) return "must not contain credentials (send an authorization header instead)";
  return url;
}

/**
 * Checks an outbound target against the guard and the allow-list (`CELERIAC_WEBHOOK_ALLOW_HOSTS`):
 * undefined when it may be called, else a message that says why not.
 */
export function refuseTarget(raw: string, allowHosts: readonly string[]): string | undefined {
  const url = parseTarget(raw);
  if (typeof url === "string") return `refused: the URL ${url}`;
  const why = classifyHost(url.hostname);
  if (why === undefined || isAllowed(url, allowHosts)) return undefined;
  return `refused: ${url.hostname} is ${why}; add it to CELERIAC_WEBHOOK_ALLOW_HOSTS to allow it`;
}
