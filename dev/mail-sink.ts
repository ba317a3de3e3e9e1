// A Resend-compatible mail sink for local runs and tests: the official `resend` SDK pointed at it
// (`new Resend(key, { baseUrl: sink.url })`) gets Resend's replies, errors, idempotency and rate-limit
// headers, while every accepted email lands in memory and on a small mailbox page. A control API
// under /_sink/ injects faults (500, 429, delay, dropped connections) to test retry paths, and
// every email produces Resend's Svix-signed delivery events, POSTed to a configured URL.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type EventTarget, type Outcome, parseForced, ResendEvents, type SentEvent } from "./mail-sink/events.ts";
import { type Fault, FaultQueue, type FaultSpec, parseFault, RateLimiter } from "./mail-sink/faults.ts";
import { error, page, parseJson, readText, reply } from "./mail-sink/http.ts";
import { checkIdempotencyKey, fingerprint, IdempotencyStore } from "./mail-sink/idempotency.ts";
import { renderEmail, renderMailbox } from "./mail-sink/page.ts";
import { type BatchValidation, emailObject, sendBatch, sendOne } from "./mail-sink/send.ts";
import type { CapturedEmail, Reply } from "./mail-sink/types.ts";
import { apiError } from "./mail-sink/validation.ts";

export type { EventTarget, Outcome, SentEvent } from "./mail-sink/events.ts";
export type { FaultMode, FaultSpec } from "./mail-sink/faults.ts";
export type { CapturedEmail } from "./mail-sink/types.ts";

export interface MailSinkOptions {
  /** TCP port; 0 picks a free one. @default 8025 */
  port?: number;
  /** @default "127.0.0.1" */
  host?: string;
  /** API key callers must send as Bearer; undefined accepts any non-empty `re_…` key. */
  apiKey?: string;
  /**
   * Requests per API key in any sliding `rateWindowMs` before 429 `rate_limit_exceeded`, as
   * Resend's default team limit; `0` switches the limit off (for tests that need it).
   * @default 5
   * @example startMailSink({ port: 0, rateLimit: 0 }) // no limit
   */
  rateLimit?: number;
  /** Length of the rate-limit window, ms. @default 1000 */
  rateWindowMs?: number;
  /**
   * Milliseconds every send (`POST /emails`, `/emails/batch`) takes before it is answered, like a
   * real provider's round trip. @default 0
   * @example startMailSink({ latencyMs: 150 })
   */
  latencyMs?: number;
  /** Where to POST Resend's delivery events (Svix-signed). @default nowhere (events are only listed) */
  events?: EventTarget;
}

/** Resend's default rate limit: requests per second per team. */
export const RESEND_RATE_LIMIT = 5;

export interface MailSink {
  /** Base URL without a trailing slash, to pass as the SDK's `baseUrl`. */
  url: string;
  close(): Promise<void>;
  /** Captured emails, newest first. */
  emails(): CapturedEmail[];
  /** Empties the mailbox and the idempotency memory. */
  clear(): void;
  /** Queues a fault for the next `count` sends, as `POST /_sink/faults` does. Throws on a bad spec. */
  inject(fault: FaultSpec): void;
  /** Drops every queued fault, as `DELETE /_sink/faults` does. */
  clearFaults(): void;
  /** Sends delivery events to `target` from now on (null: only list them). */
  sendEventsTo(target: EventTarget | null): void;
  /** The next `count` sends to `address` end with `outcome`, as `POST /_sink/outcomes` does. */
  force(address: string, outcome: Outcome, count?: number): void;
  /** Delivery events sent, newest first. */
  events(): SentEvent[];
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startMailSink(opts: MailSinkOptions = {}): Promise<MailSink> {
  const mailbox: CapturedEmail[] = [];
  const idempotency = new IdempotencyStore();
  const faults = new FaultQueue();
  const limiter = new RateLimiter(opts.rateLimit ?? RESEND_RATE_LIMIT, opts.rateWindowMs ?? 1000);
  const latencyMs = opts.latencyMs ?? 0;
  const events = new ResendEvents();
  events.configure(opts.events ?? null);
  const newestFirst = () => mailbox.slice().reverse();
  const find = (id: string) => mailbox.find((e) => e.id === id);

  async function send(
    req: IncomingMessage,
    res: ServerResponse,
    path: "/emails" | "/emails/batch",
    token: string,
    rl: Record<string, string>,
  ) {
    const text = await readText(req);
    const fault: Fault | null = faults.take();
    if (fault?.mode === "drop") return void req.socket.destroy();
    if (fault?.mode === "500")
      return error(res, apiError(500, "internal_server_error", "[celeriac mail sink] injected fault: internal server error."), rl);
    if (fault?.mode === "429") {
      const e = apiError(429, "rate_limit_exceeded", "Too many requests. Please limit the number of requests per second. (injected fault)");
      return error(res, e, { ...rl, "ratelimit-remaining": "0", "retry-after": String(fault.retryAfter) });
    }
    if (text === null) return error(res, apiError(413, "validation_error", "The request body exceeds the 40 MB limit."), rl);
    const header = req.headers["idempotency-key"];
    const key = Array.isArray(header) ? header.join(",") : (header ?? null);
    if (key !== null && !checkIdempotencyKey(key)) {
      return error(res, apiError(400, "invalid_idempotency_key", "The key must be between 1-256 chars."), rl);
    }
    const parsed = parseJson(text);
    if (!parsed.ok) return error(res, apiError(400, "validation_error", "The request body must be valid JSON."), rl);
    const modeHeader = String(req.headers["x-batch-validation"] ?? "strict").toLowerCase();
    if (modeHeader !== "strict" && modeHeader !== "permissive") {
      return error(res, apiError(422, "invalid_parameter", "`x-batch-validation` must be `strict` or `permissive`."), rl);
    }
    const mode: BatchValidation = modeHeader;
    if (key !== null) {
      const claim = idempotency.claim(token, key, fingerprint([path, path === "/emails" ? "" : mode, parsed.value]));
      if (claim.kind === "in_flight") {
        return error(
          res,
          apiError(409, "concurrent_idempotent_requests", "Same idempotency key used while original request is still in progress."),
          rl,
        );
      }
      if (claim.kind === "mismatch") {
        return error(res, apiError(409, "invalid_idempotent_request", "Same idempotency key used with a different request payload."), rl);
      }
      if (claim.kind === "replay") return reply(res, claim.reply.status, claim.reply.body, rl);
    }
    if (fault?.mode === "delay") await sleep(fault.delayMs);
    if (latencyMs > 0) await sleep(latencyMs);
    const before = mailbox.length;
    const result: Reply = path === "/emails" ? sendOne(mailbox, parsed.value, key) : sendBatch(mailbox, parsed.value, mode, key);
    if (key !== null) {
      if (result.status < 300) idempotency.complete(token, key, result);
      else idempotency.release(token, key);
    }
    for (const email of mailbox.slice(before)) events.emailAccepted(email);
    if (fault?.mode === "accept-then-drop") return void req.socket.destroy();
    reply(res, result.status, result.body, rl);
  }

  async function api(req: IncomingMessage, res: ServerResponse, method: string, path: string) {
    const token = /^Bearer\s+(\S+)/i.exec(req.headers.authorization ?? "")?.[1] ?? "";
    const { limited, headers: rl } = limiter.hit(token);
    if (!token) return error(res, apiError(401, "missing_api_key", "Missing API key in the authorization header."), rl);
    if (opts.apiKey !== undefined ? token !== opts.apiKey : !token.startsWith("re_")) {
      return error(res, apiError(403, "invalid_api_key", "API key is invalid."), rl);
    }
    if (limited)
      return error(res, apiError(429, "rate_limit_exceeded", "Too many requests. Please limit the number of requests per second."), rl);
    if (path === "/emails" || path === "/emails/batch") {
      if (method === "POST") return send(req, res, path, token, rl);
      if (method === "GET" && path === "/emails") {
        return reply(res, 200, { object: "list", has_more: false, data: newestFirst().map(emailObject) }, rl);
      }
      return error(res, apiError(405, "method_not_allowed", "Method is not allowed for the requested path."), rl);
    }
    const one = /^\/emails\/([^/]+)$/.exec(path)?.[1];
    if (one !== undefined && method === "GET") {
      if (!UUID.test(one)) return error(res, apiError(422, "invalid_parameter", "The `id` must be a valid UUID."), rl);
      const found = find(one);
      return found ? reply(res, 200, emailObject(found), rl) : error(res, apiError(404, "not_found", "Email not found."), rl);
    }
    error(res, apiError(404, "not_found", "The requested endpoint does not exist."), rl);
  }

  async function control(req: IncomingMessage, res: ServerResponse, method: string, path: string) {
    if (path === "/_sink/emails" && method === "GET") return reply(res, 200, { emails: newestFirst() });
    if (path === "/_sink/emails" && method === "DELETE") return (sink.clear(), reply(res, 200, { emails: [] }));
    const view = /^\/_sink\/emails\/([^/]+)(\/html)?$/.exec(path);
    if (view && method === "GET") {
      const found = find(decodeURIComponent(view[1] ?? ""));
      if (!found)
        return view[2]
          ? page(res, 404, "<!doctype html><p>No such email.</p>")
          : error(res, apiError(404, "not_found", "Email not found."));
      return view[2] ? page(res, 200, renderEmail(found)) : reply(res, 200, found);
    }
    if (path === "/_sink/faults") {
      if (method === "GET") return reply(res, 200, { faults: faults.list() });
      if (method === "DELETE") return (faults.clear(), reply(res, 200, { faults: [] }));
      if (method === "POST") {
        const parsed = parseJson((await readText(req)) ?? "");
        const fault = parsed.ok ? parseFault(parsed.value) : "body must be JSON";
        if (typeof fault === "string") return error(res, apiError(400, "validation_error", `[celeriac mail sink] ${fault}`));
        faults.push(fault);
        return reply(res, 200, { faults: faults.list() });
      }
    }
    if (path === "/_sink/events" && method === "GET") return reply(res, 200, { events: events.sent() });
    if (path === "/_sink/outcomes") {
      if (method === "GET") return reply(res, 200, { outcomes: events.forced() });
      if (method === "POST") {
        const parsed = parseJson((await readText(req)) ?? "");
        const forced = parsed.ok ? parseForced(parsed.value) : "body must be JSON";
        if (typeof forced === "string") return error(res, apiError(400, "validation_error", `[celeriac mail sink] ${forced}`));
        events.force(forced.address, forced.outcome, forced.count);
        return reply(res, 200, { outcomes: events.forced() });
      }
    }
    error(res, apiError(404, "not_found", "The requested endpoint does not exist."));
  }

  const server = createServer((req, res) => {
    const method = req.method ?? "GET";
    const path = new URL(req.url ?? "/", "http://sink").pathname;
    const handled =
      path === "/" && method === "GET"
        ? Promise.resolve(page(res, 200, renderMailbox(newestFirst())))
        : path.startsWith("/_sink/")
          ? control(req, res, method, path)
          : api(req, res, method, path);
    handled.catch((e: unknown) => {
      console.error("[celeriac] mail sink:", e);
      if (!res.headersSent) error(res, apiError(500, "application_error", "The mail sink failed to handle the request."));
      else res.destroy();
    });
  });

  const host = opts.host ?? "127.0.0.1";
  await new Promise<void>((done, failed) => {
    server.once("error", failed);
    server.listen(opts.port ?? 8025, host, () => (server.off("error", failed), done()));
  });
  const { port } = server.address() as AddressInfo;
  const shown = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host.includes(":") ? `[${host}]` : host;

  const sink: MailSink = {
    url: `http://${shown}:${port}`,
    close: () =>
      new Promise<void>((done, failed) => {
        events.close();
        server.close((e) => (e ? failed(e) : done()));
        server.closeAllConnections();
      }),
    emails: newestFirst,
    clear: () => {
      mailbox.length = 0;
      idempotency.clear();
      events.clear();
    },
    inject: (spec) => {
      const fault = parseFault(spec);
      if (typeof fault === "string") throw new TypeError(`[celeriac] mail sink fault: ${fault}`);
      faults.push(fault);
    },
    clearFaults: () => faults.clear(),
    sendEventsTo: (target) => events.configure(target),
    force: (address, outcome, count = 1) => {
      const forced = parseForced({ address, outcome, count });
      if (typeof forced === "string") throw new TypeError(`[celeriac] mail sink outcome: ${forced}`);
      events.force(forced.address, forced.outcome, forced.count);
    },
    events: () => events.sent(),
  };
  return sink;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const num = (name: string) => (process.env[name] ? Number(process.env[name]) : undefined);
  const port = num("PORT");
  const rateLimit = num("SINK_RATE_LIMIT");
  const latencyMs = num("SINK_LATENCY_MS");
  const { RESEND_WEBHOOK_URL: url, RESEND_WEBHOOK_SECRET: secret } = process.env;
  const sink = await startMailSink({
    ...(port !== undefined ? { port } : {}),
    ...(url && secret ? { events: { url, secret } } : {}),
    ...(rateLimit !== undefined ? { rateLimit } : {}),
    ...(latencyMs !== undefined ? { latencyMs } : {}),
  });
  console.log(
    `[celeriac] mail sink (Resend API) listening on ${sink.url} (rate limit ${rateLimit ?? RESEND_RATE_LIMIT}/s per key, 0 = off; env SINK_RATE_LIMIT, SINK_LATENCY_MS)`,
  );
  console.log(`[celeriac] mailbox page: ${sink.url}/`);
  const stop = () => void sink.close().then(() => process.exit(0));
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}
