/** Header helpers: raw header lists, Go-canonical names (what QStash reports) and header maps. */
import type { HeaderMap } from "./types.ts";

export type RawHeaders = Array<[string, string]>;

/** Go's CanonicalMIMEHeaderKey: `x-custom-id` → `X-Custom-Id`. */
export function canonicalName(name: string): string {
  return name
    .toLowerCase()
    .split("-")
    .map((p) => (p ? p[0]?.toUpperCase() + p.slice(1) : p))
    .join("-");
}

/** Node's `rawHeaders` ([k, v, k, v…]) as pairs, names kept as sent. */
export function pairsFromRaw(raw: string[]): RawHeaders {
  const out: RawHeaders = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i] as string, raw[i + 1] as string]);
  return out;
}

/** First value of a header, case-insensitively. */
export function getHeader(headers: RawHeaders, name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const [k, v] of headers) if (k.toLowerCase() === lower) return v;
  return undefined;
}

export function addHeader(map: HeaderMap, name: string, value: string): void {
  const key = canonicalName(name);
  (map[key] ??= []).push(value);
}

/** Response headers from node:http as a HeaderMap. */
export function headerMapFromDistinct(distinct: Record<string, string[] | undefined>): HeaderMap {
  const out: HeaderMap = {};
  for (const [k, v] of Object.entries(distinct)) if (v) out[canonicalName(k)] = [...v];
  return out;
}

/** Headers that describe the connection, never the message. */
export const HOP_BY_HOP = new Set([
  "host",
  "connection",
  "keep-alive",
  "content-length",
  "transfer-encoding",
  "authorization",
  "accept-encoding",
  "te",
  "upgrade",
  "proxy-authorization",
  "expect",
]);
