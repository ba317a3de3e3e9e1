import * as v from "valibot";
import {
  defineTask,
  messageOf,
  PermanentError,
  parseTarget,
  RateLimited,
  RetryLater,
  refusalOf,
  refuseTarget,
  retryAfterSeconds,
  signWebhook,
} from "../src/task.ts";

/** Hop-by-hop and framing headers belong to the connection, and the signature headers to us. */
const RESERVED = new Set([
  "host",
  "content-length",
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "webhook-id",
  "webhook-timestamp",
  "webhook-signature",
]);
const EXCERPT = 2_000; // characters of a response body kept in the result
const ERROR_EXCERPT = 300; // characters of a failed answer's body kept with the error

const url = v.pipe(
  v.string("must be a URL"),
  v.maxLength(2_048, "must be at most 2048 characters"),
  v.rawCheck(({ dataset, addIssue }) => {
    const why = dataset.typed ? parseTarget(dataset.value) : undefined;
    if (typeof why === "string") addIssue({ message: `the URL ${why}` });
  }),
);
const headerName = v.pipe(
  v.string(),
  v.regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$/, "must be a header name"),
  v.check((n) => !RESERVED.has(n.toLowerCase()), "is set by celeriac or by the connection, not by a task"),
);
const headerValue = v.pipe(v.string("must be text"), v.maxLength(8_192), v.regex(/^[^\r\n\0]*$/, "must not contain CR, LF or NUL"));

/** The variables of the webhook task (and of the callback task, which sends through it). */
export const WebhookEnv = v.object({
  /** Signs every request (Standard Webhooks); without it requests go out unsigned. */
  CELERIAC_WEBHOOK_SECRET: v.optional(
    v.union([
      v.literal(""),
      v.pipe(v.string(), v.regex(/^whsec_[A-Za-z0-9+/=]+$/, "CELERIAC_WEBHOOK_SECRET must look like whsec_<base64>")),
    ]),
    "",
  ),
  /** Hosts the task may call although private or loopback: `host` or `host:port`, comma-separated. */
  CELERIAC_WEBHOOK_ALLOW_HOSTS: v.pipe(
    v.optional(v.string(), ""),
    v.transform((s) =>
      s
        .split(",")
        .map((x) => x.trim().toLowerCase())
        .filter(Boolean),
    ),
  ),
});

const WebhookRequest = v.pipe(
  v.strictObject({
    url,
    method: v.optional(v.picklist(["GET", "POST", "PUT", "PATCH", "DELETE"], "must be GET, POST, PUT, PATCH or DELETE"), "POST"),
    headers: v.optional(
      v.pipe(
        v.record(headerName, headerValue),
        v.check((h) => Object.keys(h).length <= 50, "at most 50 headers"),
      ),
    ),
    body: v.optional(
      v.union(
        [v.strictObject({ json: v.unknown() }), v.strictObject({ text: v.string() })],
        'must be {"json": <any JSON>} or {"text": "<string>"}, exactly one of them',
      ),
    ),
  }),
  v.forward(
    v.check((r) => r.body === undefined || (r.method !== "GET" && r.method !== "DELETE"), "GET and DELETE send no body"),
    ["body"],
  ),
);

/**
 * Delivers one HTTP request, signed with Standard Webhooks (`webhook-id` = task id, stable across
 * retries, so receivers can drop duplicates). 2xx succeeds; 408, 429, 5xx and network errors retry
 * (honouring Retry-After); other 4xx and any redirect fail for good. Private targets are refused.
 */
export default defineTask({
  name: "webhook",
  input: WebhookRequest,
  env: WebhookEnv,
  // Receivers go away for a deploy or a restart, minutes rather than hours: spread 8 retries over
  // about 45 minutes (10, 20, 40 … 1280 s), never the hours-long waits of an uncapped backoff. A
  // 429 or 503 with Retry-After waits as long as the receiver asks.
  retries: 8,
  retryDelay: { base: 10, factor: 2, max: 1800 },
  timeout: 30,
  check: checkTarget,
  allowHosts: (env) => env.CELERIAC_WEBHOOK_ALLOW_HOSTS,
  // Header values carry credentials (authorization, API keys): the record keeps only their names.
  redact: ["headers.*"],
  async run(req, ctx) {
    // The target was checked by `check` at enqueue and again by the runner before this attempt.
    const body = req.body === undefined ? undefined : "json" in req.body ? JSON.stringify(req.body.json ?? null) : req.body.text;
    const headers = new Headers(req.headers);
    if (req.body && !headers.has("content-type"))
      headers.set("content-type", "json" in req.body ? "application/json" : "text/plain; charset=utf-8");
    if (!headers.has("user-agent")) headers.set("user-agent", "celeriac-webhook/1");
    const at = Math.floor(Date.now() / 1000); // per attempt; the id is per task
    headers.set("webhook-id", ctx.id);
    headers.set("webhook-timestamp", String(at));
    // Without a secret the request goes out unsigned; webhook-id still lets receivers deduplicate.
    const secret = ctx.env.CELERIAC_WEBHOOK_SECRET;
    if (secret) headers.set("webhook-signature", await signWebhook(secret, ctx.id, at, body ?? ""));
    const what = `[celeriac] webhook ${req.method} ${new URL(req.url).origin}`;
    let res: Response;
    try {
      // Never follow a redirect: its Location was not checked against the SSRF guard.
      res = await ctx.fetch(req.url, { method: req.method, headers, ...(body !== undefined ? { body } : {}), redirect: "manual" });
    } catch (err) {
      if (ctx.signal.aborted) throw ctx.signal.reason; // the task's timeout: recorded as such
      // The connection-time guard refused an address the name resolved to: fails for good.
      const refused = refusalOf(err);
      if (refused) throw refused;
      throw new Error(`${what} failed: ${messageOf(err)}`);
    }
    const { status } = res;
    if (status >= 200 && status < 300) {
      const type = res.headers.get("content-type");
      return { status, headers: type ? { "content-type": type } : {}, ...(await excerpt(res, EXCERPT)) };
    }
    // Kept with the error: the status, the start of the answer, and where it came from (origin and
    // path only: a query string may carry a token).
    const target = new URL(req.url);
    const { body: answer } = await excerpt(res, ERROR_EXCERPT);
    const details = { status, url: target.origin + target.pathname, body: answer };
    const answered = `[celeriac] webhook ${req.method} ${details.url} answered ${status}${answer ? `: ${answer.slice(0, 120)}` : ""}`;
    const fail = <E extends Error>(e: E) => Object.assign(e, { details });
    if (status >= 300 && status < 400) {
      throw fail(
        new PermanentError(`${answered} (redirect to ${res.headers.get("location") ?? "?"}); redirects are not followed`, "http_redirect"),
      );
    }
    const after = retryAfterSeconds(res.headers.get("retry-after"));
    // "Later", never "no": waits for room without spending an attempt (src/rate-limit-wait.ts).
    if (status === 429) throw fail(new RateLimited({ after: after ?? 1, message: answered, code: "http_429" }));
    if (status === 408 || status >= 500) {
      if (after !== undefined) throw fail(new RetryLater({ after, message: answered, code: `http_${status}` }));
      throw fail(Object.assign(new Error(answered), { code: `http_${status}` })); // the task's retryDelay
    }
    throw fail(new PermanentError(answered, `http_${status}`));
  },
});

/** The SSRF guard on a payload's `url`, with the allow-list: run at enqueue and before every attempt. */
export function checkTarget(p: { url: string }, env: v.InferOutput<typeof WebhookEnv>) {
  const why = refuseTarget(p.url, env.CELERIAC_WEBHOOK_ALLOW_HOSTS);
  return why ? [{ path: "url", message: why }] : undefined;
}

/** The start of a response body, read only as far as needed (a huge answer is not buffered). */
async function excerpt(res: Response, max: number): Promise<{ body: string; truncated?: true }> {
  // A short answer of known length is read in one go (a chunked read costs more CPU per call).
  const length = Number(res.headers.get("content-length") ?? NaN);
  if (length <= max) return { body: await res.text() };
  const reader = res.body?.getReader();
  if (!reader) return { body: "" };
  const decoder = new TextDecoder();
  let text = "";
  while (text.length <= max) {
    const { done, value } = await reader.read();
    if (done) return { body: text + decoder.decode() };
    text += decoder.decode(value, { stream: true });
  }
  await reader.cancel();
  return { body: text.slice(0, max), truncated: true };
}
