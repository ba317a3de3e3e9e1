import type { PublicLimits } from "./rate-limit.ts";

/** The phrase that lets a public task take both its recipient and free content from the browser. */
export const OPEN_RELAY_ACK = "browsers choose both the recipient and the content" as const;

/**
 * What makes a task callable from browsers at `POST /v1/public/:name` without an API key. The
 * browser sends the task's payload and nothing else; the task decides what is sent and to whom.
 * @example { recipient: "email", limits: { recipient: { requests: 3, window: 600 } }, turnstile: true }
 */
export interface PublicOptions {
  /**
   * Exact origins (`https://shop.example`) whose pages may call the task.
   * @default the origins in CELERIAC_PUBLIC_ORIGINS
   */
  origins?: readonly string[];
  /**
   * The payload field that holds the address the task sends to (an email address, a URL). It is
   * limited per value, and the only caller-chosen field a public task may send to. @default none
   */
  recipient?: string;
  /** Rate limits; see {@link PublicLimits} for the defaults. */
  limits?: PublicLimits;
  /** Require a Cloudflare Turnstile token (checked when TURNSTILE_SECRET_KEY is set). @default false */
  turnstile?: boolean;
  /**
   * A public task whose payload lets the browser choose the recipient AND free content (text,
   * URLs, lists, objects) is an open relay; defineTask refuses one unless this is set to
   * {@link OPEN_RELAY_ACK}, word for word. @default unset (refused)
   */
  acknowledge?: typeof OPEN_RELAY_ACK;
}

// valibot's schema objects, as far as this check reads them.
type Schema = {
  type: string;
  entries?: Record<string, Schema>;
  wrapped?: Schema;
  item?: Schema;
  items?: Schema[];
  value?: Schema;
  options?: unknown[];
  pipe?: { type: string; requirement?: unknown }[];
};

/** Values a browser can only pick from, never write: picklists, literals, booleans, numbers. */
const CLOSED = new Set(["picklist", "literal", "enum", "boolean", "number", "bigint"]);
/** A string is a bounded identifier (a slug, a locale) when a regex and a length of at most this hold it. */
const MAX_IDENTIFIER = 64;

function unwrap(s: Schema): Schema {
  while ((s.type === "optional" || s.type === "nullable" || s.type === "nullish" || s.type === "exact_optional") && s.wrapped)
    s = s.wrapped;
  return s;
}

const actions = (s: Schema) => new Set((s.pipe ?? []).map((a) => a.type));

/** Field names that say "where to send": caught even when a custom check validates them. */
const ADDRESS_NAMES = /^(to|cc|bcc|reply_?to|from|e_?mail|emails?|url|urls|webhook|callback|recipients?|address|phone|target)$/i;
/** Tasks that would make celeriac an open relay if browsers could call them. */
const NEVER_PUBLIC = new Set(["send-email", "webhook"]);

/**
 * Whether a field carries an address: an email or a URL, by its checks or by its name, at any
 * depth (inside an object, a list, a record, a tuple or a union), so nesting cannot hide one.
 */
function isAddress(name: string, s: Schema): boolean {
  const u = unwrap(s);
  const a = actions(u);
  if (a.has("email") || a.has("url") || a.has("rfc_email") || ADDRESS_NAMES.test(name)) return true;
  const inner: [string, Schema][] = [
    ...Object.entries(u.entries ?? {}),
    ...[u.item, u.value, ...(u.items ?? []), ...(u.options ?? [])]
      .filter((x): x is Schema => typeof x === "object" && x !== null && typeof (x as Schema).type === "string")
      .map((x): [string, Schema] => [name, x]),
  ];
  return inner.some(([k, x]) => isAddress(k, x));
}

/** Whether a field lets the browser write content of its own. */
function isFree(s: Schema): boolean {
  const u = unwrap(s);
  if (CLOSED.has(u.type)) return false;
  if (u.type === "string") {
    const max = (u.pipe ?? []).find((a) => a.type === "max_length")?.requirement;
    return !(actions(u).has("regex") && typeof max === "number" && max <= MAX_IDENTIFIER);
  }
  return true;
}

/** The problems with a public task's declaration (empty when it may be public). */
export function publicProblems(name: string, input: unknown, p: PublicOptions): string[] {
  if (NEVER_PUBLIC.has(name)) return [`[celeriac] task "${name}" is never public: browsers would relay mail or requests anywhere`];
  const problems: string[] = [];
  const schema = input as Schema;
  if (schema.type !== "strict_object" || !schema.entries) {
    return ["a public task's input must be a v.strictObject, so a browser cannot send fields the task does not name"];
  }
  for (const o of p.origins ?? []) {
    let ok = false;
    try {
      ok = new URL(o).origin === o;
    } catch {}
    if (!ok) problems.push(`origin "${o}" must be an exact origin such as https://shop.example (no path, no trailing slash)`);
  }
  const entries = schema.entries;
  if (p.recipient !== undefined && !(p.recipient in entries)) problems.push(`recipient "${p.recipient}" is not a field of the input`);
  // One string: a list would reach several people per call, and each call counts one value.
  else if (p.recipient !== undefined && unwrap(entries[p.recipient]!).type !== "string") {
    problems.push(`recipient "${p.recipient}" must be one string (an address), not a list or an object`);
  }
  const addresses = Object.keys(entries).filter((k) => k !== p.recipient && isAddress(k, entries[k]!));
  if (addresses.length) {
    problems.push(
      `field(s) ${addresses.join(", ")} hold an address; name the one the task sends to as public.recipient (a public task has one)`,
    );
  }
  const free = Object.keys(entries).filter((k) => k !== p.recipient && isFree(entries[k]!));
  if (p.recipient !== undefined && free.length && p.acknowledge !== OPEN_RELAY_ACK) {
    problems.push(
      `browsers would choose both the recipient (${p.recipient}) and free content (${free.join(", ")}): an open relay. ` +
        `Make those fields picklists, literals, numbers or short regex-bound identifiers, or set public.acknowledge to "${OPEN_RELAY_ACK}"`,
    );
  }
  return problems.map((m) => `[celeriac] public task "${name}": ${m}`);
}
