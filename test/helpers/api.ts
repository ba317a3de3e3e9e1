// Small clients for the tests: the relay's HTTP API, the mail sink's mailbox and fault controls,
// and the broker's dev-only control API.
import { createHash, createHmac, randomUUID } from "node:crypto";
import { inject } from "vitest";
import { DEV_API_KEY } from "../../dev/stack.ts";

export const stack = () => inject("stack");

/** The run's Redis key prefix (each test run keeps its keys apart from the dev stack's). */
export const keyPrefix = () => stack().env.CELERIAC_REDIS_PREFIX ?? "celeriac:";

export interface Json {
  status: number;
  headers: Headers;
  body: any;
}

/** Calls the relay at `base` (the Worker by default) with the dev API key. */
export async function call(
  method: string,
  path: string,
  body?: unknown,
  init: { headers?: Record<string, string>; base?: string; raw?: string } = {},
): Promise<Json> {
  const headers: Record<string, string> = { authorization: `Bearer ${DEV_API_KEY}`, ...init.headers };
  if (body !== undefined || init.raw !== undefined) headers["content-type"] ??= "application/json";
  const r = await fetch((init.base ?? stack().worker) + path, {
    method,
    headers,
    ...(init.raw !== undefined ? { body: init.raw } : body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await r.text();
  return { status: r.status, headers: r.headers, body: text ? JSON.parse(text) : undefined };
}

/** Polls until `check` returns a value (not undefined), or fails after `ms`. */
export async function until<T>(what: string, check: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
}

/** Waits until the task reaches one of `states` and returns its record. */
export function settle(id: string, states: string[] = ["succeeded", "failed", "cancelled"], base?: string) {
  return until(`task ${id} to be ${states.join("/")}`, async () => {
    const r = await call("GET", `/v1/tasks/${id}`, undefined, base ? { base } : {});
    return states.includes(r.body?.state) ? r.body : undefined;
  });
}

export const mailbox = {
  async all(): Promise<any[]> {
    const r = await fetch(`${stack().sink}/_sink/emails`);
    return (await r.json()).emails;
  },
  /** Emails whose subject is exactly `subject` (tests use unique subjects). */
  async withSubject(subject: string) {
    return (await mailbox.all()).filter((e) => (e.subject ?? e.payload?.subject) === subject);
  },
  /** Emails sent to `address`, newest first. */
  async to(address: string) {
    return (await mailbox.all()).filter((e) => (e.to as string[]).includes(address));
  },
  async fault(f: { mode: string; count: number; retryAfter?: number; delayMs?: number }) {
    const r = await fetch(`${stack().sink}/_sink/faults`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(f),
    });
    if (!r.ok) throw new Error(`fault injection failed: ${r.status}`);
  },
  async clearFaults() {
    await fetch(`${stack().sink}/_sink/faults`, { method: "DELETE" });
  },
};

export const broker = {
  async deliver(messageId: string, copies: number): Promise<{ statuses: number[] }> {
    const r = await fetch(`${stack().broker}/_broker/messages/${messageId}/deliver?copies=${copies}`, {
      method: "POST",
      headers: { authorization: `Bearer ${stack().env.QSTASH_TOKEN}` },
    });
    if (!r.ok) throw new Error(`broker deliver failed: ${r.status} ${await r.text()}`);
    return r.json();
  },
};

const b64url = (b: Buffer | string) => Buffer.from(b).toString("base64url");

/** A QStash-style signature JWT, for forging and replaying deliveries in tests. */
export function sign(opts: {
  key: string;
  url: string;
  body: string | Uint8Array;
  iat?: number;
  exp?: number;
  alg?: string;
  header?: Record<string, unknown>;
  claims?: Record<string, unknown>;
}) {
  const iat = opts.iat ?? Math.floor(Date.now() / 1000);
  const header = b64url(JSON.stringify({ alg: opts.alg ?? "HS256", typ: "JWT", ...opts.header }));
  const claims = b64url(
    JSON.stringify({
      iss: "Upstash",
      sub: opts.url,
      iat,
      nbf: iat,
      exp: opts.exp ?? iat + 300,
      jti: randomUUID(),
      body: createHash("sha256").update(opts.body).digest("base64url"),
      ...opts.claims,
    }),
  );
  const sig = createHmac("sha256", opts.key).update(`${header}.${claims}`).digest("base64url");
  return `${header}.${claims}.${sig}`;
}

/** POSTs `body` (JSON text) to `url` as QStash does: signed with the stack's current signing key. */
export const postAsQstash = (url: string, body: string) =>
  fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", "upstash-signature": sign({ key: stack().env.QSTASH_CURRENT_SIGNING_KEY!, url, body }) },
    body,
  });

export const unique = (label: string) => `${label} ${randomUUID().slice(0, 8)}`;
