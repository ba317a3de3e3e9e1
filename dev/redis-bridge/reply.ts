// Redis replies as the backends hand them over, and their JSON form on the REST wire.

/** An error reply from Redis (or one the bridge produces with Redis's wording). */
export class ReplyError extends Error {
  override name = "ReplyError";
}

/** The backend itself is unusable (lost connection…): not a command error, so the HTTP layer says 503. */
export class BackendError extends Error {
  override name = "BackendError";
}

/** A status reply ("+OK"), kept apart from bulk strings only where Lua needs the difference. */
export class Status {
  readonly text: string;
  constructor(text: string) {
    this.text = text;
  }
}

export type Reply = null | number | string | Uint8Array | Status | ReplyError | Reply[];

export type Settled = { ok: true; value: Reply } | { ok: false; error: string };

/**
 * JSON form of a reply. With `Upstash-Encoding: base64` every string (bulk or status, at any
 * depth) goes out base64-encoded, except a top-level "OK", which Upstash leaves plain and the
 * client special-cases; integers and nulls stay as they are.
 */
export function toJson(reply: Reply, base64: boolean, top = true): unknown {
  if (reply === null || typeof reply === "number") return reply;
  if (Array.isArray(reply)) return reply.map((r) => toJson(r, base64, false));
  const bytes =
    reply instanceof Uint8Array
      ? Buffer.from(reply.buffer, reply.byteOffset, reply.byteLength)
      : Buffer.from(reply instanceof Status ? reply.text : reply instanceof Error ? reply.message : reply);
  if (!base64) return bytes.toString("utf8");
  if (top && bytes.length === 2 && bytes.toString("latin1") === "OK") return "OK";
  return bytes.toString("base64");
}

/** RESP2 encoding, used to hand replies into the embedded backend's Lua VM. */
export function toResp(reply: Reply): string {
  if (reply === null) return "$-1\r\n";
  if (typeof reply === "number") return `:${Math.trunc(reply)}\r\n`;
  if (reply instanceof Status) return `+${oneLine(reply.text)}\r\n`;
  if (reply instanceof Error) return `-${oneLine(reply.message)}\r\n`;
  if (Array.isArray(reply)) return `*${reply.length}\r\n${reply.map(toResp).join("")}`;
  const text = typeof reply === "string" ? reply : Buffer.from(reply).toString("utf8");
  return `$${Buffer.byteLength(text)}\r\n${text}\r\n`;
}

const oneLine = (s: string) => s.replace(/[\r\n]+/g, " ");

/**
 * Parses the RESP2 text the Lua VM hands back. Bulk strings come hex-encoded (`$<hexlen>`) so that
 * bytes that are not UTF-8 survive the trip through JS strings.
 */
export function parseHexResp(text: string): Reply {
  let pos = 0;
  const line = (): string => {
    const end = text.indexOf("\r\n", pos);
    if (end < 0) throw new ReplyError("ERR malformed reply from the embedded Lua VM");
    const s = text.slice(pos, end);
    pos = end + 2;
    return s;
  };
  const next = (): Reply => {
    const head = line();
    const body = head.slice(1);
    switch (head[0]) {
      case ":":
        return Number(body);
      case "+":
        return new Status(body);
      case "-":
        return new ReplyError(body);
      case "$": {
        if (body === "-1") return null;
        const hex = text.slice(pos, pos + Number(body));
        pos += hex.length + 2;
        return Buffer.from(hex, "hex");
      }
      case "*": {
        if (body === "-1") return null;
        const out: Reply[] = [];
        for (let i = 0; i < Number(body); i++) out.push(next());
        return out;
      }
      default:
        throw new ReplyError("ERR malformed reply from the embedded Lua VM");
    }
  };
  return next();
}
