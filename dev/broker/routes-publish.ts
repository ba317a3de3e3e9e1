/** POST /v2/publish/{destination}, /v2/enqueue/{queue}/{destination}, /v2/batch. */
import { createHash } from "node:crypto";
import { type Core, type Ctx, fail, ok, type Reply } from "./core.ts";
import type { RawHeaders } from "./headers.ts";
import { PublishError, parseSpec, splitDestinationQuery } from "./publish.ts";
import type { MessageSpec } from "./types.ts";

const MAX_BODY = 10 * 1024 * 1024;

function contentKey(spec: MessageSpec): string {
  const h = createHash("sha256");
  h.update(spec.url).update("\0").update(spec.body).update("\0");
  for (const name of Object.keys(spec.header).sort()) h.update(`${name}:${spec.header[name]?.join(",")}\n`);
  return `content:${h.digest("hex")}`;
}

interface PublishInput {
  destination: string;
  headers: RawHeaders;
  body: Buffer;
  queueName?: string;
  ip: string;
}

/** Publishes one message, honouring deduplication. Throws PublishError. */
export function publishOne(core: Core, input: PublishInput): { status: number; json: Record<string, unknown> } {
  if (input.body.length > MAX_BODY) throw new PublishError(413, "message size exceeds the 10 MB limit");
  const spec = parseSpec({
    destination: input.destination,
    headers: input.headers,
    body: input.body,
    ...(input.queueName ? { queueName: input.queueName } : {}),
    callerIp: input.ip,
  });
  const keys: string[] = [];
  if (spec.deduplicationId) keys.push(`id:${spec.deduplicationId}`);
  if (spec.contentBasedDeduplication) keys.push(contentKey(spec));
  const now = Date.now();
  for (const k of keys) {
    const hit = core.store.dedup.get(k);
    if (hit && hit.expiresAt > now) {
      return { status: 202, json: { messageId: hit.messageId, url: hit.url, deduplicated: true } };
    }
  }
  const msg = core.dispatcher.create(spec);
  for (const k of keys) core.store.dedup.set(k, { messageId: msg.messageId, url: msg.url, expiresAt: now + core.dedupWindowMs });
  if (core.store.dedup.size > 50_000) {
    for (const [k, v] of core.store.dedup) if (v.expiresAt <= now) core.store.dedup.delete(k);
  }
  return { status: 201, json: { messageId: msg.messageId, url: msg.url } };
}

function asReply(fn: () => { status: number; json: unknown }): Reply {
  try {
    return fn();
  } catch (e) {
    if (e instanceof PublishError) return fail(e.status, e.message);
    throw e;
  }
}

/** `rest` is the raw path after /v2/publish/ (or after the queue segment for enqueue). */
function fromPath(core: Core, ctx: Ctx, rest: string, queueName?: string): Reply {
  const { destination, config } = splitDestinationQuery(rest, ctx.rawQuery);
  // Config passed as lower-case upstash-* query params counts as headers (headers win).
  const headers: RawHeaders = [...ctx.headers];
  for (const [k, v] of config) if (!headers.some(([h]) => h.toLowerCase() === k)) headers.push([k, v]);
  return asReply(() => publishOne(core, { destination, headers, body: ctx.body, ip: ctx.ip, ...(queueName ? { queueName } : {}) }));
}

export function publishRoute(core: Core, ctx: Ctx): Reply {
  return fromPath(core, ctx, ctx.rawPath.slice("/v2/publish/".length));
}

export function enqueueRoute(core: Core, ctx: Ctx): Reply {
  const rest = ctx.rawPath.slice("/v2/enqueue/".length);
  const slash = rest.indexOf("/");
  if (slash <= 0) return fail(400, "expected /v2/enqueue/{queueName}/{destination}");
  return fromPath(core, ctx, rest.slice(slash + 1), decodeURIComponent(rest.slice(0, slash)));
}

export function batchRoute(core: Core, ctx: Ctx): Reply {
  let items: unknown;
  try {
    items = JSON.parse(ctx.body.toString("utf8"));
  } catch {
    return fail(400, "batch body must be a JSON array");
  }
  if (!Array.isArray(items)) return fail(400, "batch body must be a JSON array");
  const results = items.map((item: unknown) => {
    if (!item || typeof item !== "object") return { error: "batch item must be an object" };
    const it = item as { destination?: unknown; headers?: unknown; body?: unknown; queue?: unknown };
    if (typeof it.destination !== "string" || !it.destination) return { error: "destination is required" };
    const headers: RawHeaders = [];
    if (it.headers && typeof it.headers === "object") {
      for (const [k, v] of Object.entries(it.headers as Record<string, unknown>)) {
        // Telemetry describes the publishing SDK, not the message.
        if (k.toLowerCase().startsWith("upstash-telemetry-")) continue;
        for (const one of Array.isArray(v) ? v : [v]) if (one !== undefined && one !== null) headers.push([k, String(one)]);
      }
    }
    const q = it.destination.indexOf("?");
    const dest = q < 0 ? it.destination : it.destination.slice(0, q);
    const { destination } = splitDestinationQuery(dest, q < 0 ? undefined : it.destination.slice(q + 1));
    try {
      return publishOne(core, {
        destination,
        headers,
        body: Buffer.from(typeof it.body === "string" ? it.body : it.body == null ? "" : JSON.stringify(it.body)),
        ip: ctx.ip,
        ...(typeof it.queue === "string" && it.queue ? { queueName: it.queue } : {}),
      }).json;
    } catch (e) {
      if (e instanceof PublishError) return { error: e.message };
      throw e;
    }
  });
  return ok(results, 201);
}
