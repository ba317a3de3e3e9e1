/** Turns a publish request (headers, destination, body) into a MessageSpec, with QStash's errors. */
import { parseDuration } from "./durations.ts";
import { addHeader, getHeader, HOP_BY_HOP, type RawHeaders } from "./headers.ts";
import { compileRetryDelay } from "./retry-expr.ts";
import type { FlowControl, HeaderMap, MessageSpec } from "./types.ts";

export class PublishError extends Error {
  status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

export const FLOW_CONTROL_ERROR = "Upstash-Flow-Control-Value should be either rate=X or parallelism=Y, or both as comma-separated values";
const INVALID_SCHEME = "invalid destination url: endpoint has invalid scheme, add http:// or https://";

/**
 * Normalises a destination taken from the path: keeps `//`, repairs `https:/x` (proxies and
 * URL parsers squash double slashes) and decodes a fully percent-encoded URL.
 */
export function normalizeDestination(raw: string): string {
  let dest = raw;
  if (/^https?%3A/i.test(dest)) dest = decodeURIComponent(dest);
  const squashed = /^(https?):\/(?!\/)(.*)$/i.exec(dest);
  if (squashed) dest = `${squashed[1]}://${squashed[2]}`;
  return dest;
}

/** Validates a destination URL; URL-group names (no scheme) get a clear 404. */
export function validateDestination(dest: string): string {
  if (!/^[a-z][a-z0-9+.-]*:/i.test(dest)) {
    if (/^[\w.-]+$/.test(dest)) {
      throw new PublishError(404, `url group "${dest}" not found: the local broker does not support url groups`);
    }
    throw new PublishError(400, INVALID_SCHEME);
  }
  if (!/^https?:\/\//i.test(dest)) throw new PublishError(400, INVALID_SCHEME);
  try {
    const u = new URL(dest);
    if (!u.hostname) throw new Error("no host");
  } catch {
    throw new PublishError(400, `invalid destination url: ${dest}`);
  }
  return dest;
}

export function parseFlowControlValue(key: string, value: string | undefined): FlowControl {
  const fc: FlowControl = { key };
  if (value === undefined || value.trim() === "") throw new PublishError(400, FLOW_CONTROL_ERROR);
  for (const part of value.split(",")) {
    const m = /^\s*(parallelism|rate|period)\s*=\s*([^\s,]+)\s*$/i.exec(part);
    if (!m) throw new PublishError(400, FLOW_CONTROL_ERROR);
    const name = (m[1] as string).toLowerCase();
    const raw = m[2] as string;
    if (name === "period") {
      const ms = parseDuration(raw);
      if (ms === undefined || ms <= 0) throw new PublishError(400, FLOW_CONTROL_ERROR);
      fc.period = ms / 1000;
    } else {
      if (!/^\d+$/.test(raw) || Number(raw) < 1) throw new PublishError(400, FLOW_CONTROL_ERROR);
      if (name === "parallelism") fc.parallelism = Number(raw);
      else fc.rate = Number(raw);
    }
  }
  if (fc.parallelism === undefined && fc.rate === undefined) throw new PublishError(400, FLOW_CONTROL_ERROR);
  return fc;
}

function validateCallback(name: string, url: string): string {
  if (!/^https?:\/\/[^/]/i.test(url)) throw new PublishError(400, `invalid ${name} url: ${url}`);
  return url;
}

export interface SpecInput {
  destination: string;
  headers: RawHeaders;
  body: Buffer;
  queueName?: string;
  callerIp?: string;
  /** Schedules take their own Upstash-Delay; publish computes it too. */
}

/** Reads every Upstash-* option. Throws PublishError (400/404) with QStash's wording. */
export function parseSpec(input: SpecInput): MessageSpec {
  const h = input.headers;
  const url = validateDestination(normalizeDestination(input.destination));
  const header: HeaderMap = {};
  const callbackHeader: HeaderMap = {};
  const failureCallbackHeader: HeaderMap = {};
  const forwardAll = getHeader(h, "upstash-header-forward")?.toLowerCase() === "true";
  for (const [name, value] of h) {
    const lower = name.toLowerCase();
    if (lower.startsWith("upstash-forward-")) addHeader(header, name.slice(16), value);
    else if (lower.startsWith("upstash-callback-forward-")) addHeader(callbackHeader, name.slice(25), value);
    else if (lower.startsWith("upstash-failure-callback-forward-")) {
      addHeader(failureCallbackHeader, name.slice(33), value);
    } else if (lower === "content-type") addHeader(header, name, value);
    else if (forwardAll && !lower.startsWith("upstash-") && !HOP_BY_HOP.has(lower)) addHeader(header, name, value);
  }

  const spec: MessageSpec = {
    url,
    method: (getHeader(h, "upstash-method") ?? "POST").toUpperCase(),
    header,
    body: input.body,
    maxRetries: 3,
  };
  if (!/^[A-Z]+$/.test(spec.method)) throw new PublishError(400, `invalid Upstash-Method: ${spec.method}`);
  if (input.queueName) spec.queueName = input.queueName;
  if (input.callerIp) spec.callerIp = input.callerIp;
  if (Object.keys(callbackHeader).length) spec.callbackHeader = callbackHeader;
  if (Object.keys(failureCallbackHeader).length) spec.failureCallbackHeader = failureCallbackHeader;

  const retries = getHeader(h, "upstash-retries");
  if (retries !== undefined) {
    if (!/^\s*\d+\s*$/.test(retries)) throw new PublishError(400, `invalid Upstash-Retries header: ${retries}`);
    spec.maxRetries = Number(retries);
  }
  const retryDelay = getHeader(h, "upstash-retry-delay");
  if (retryDelay !== undefined) {
    try {
      compileRetryDelay(retryDelay);
    } catch (e) {
      throw new PublishError(400, `invalid Upstash-Retry-Delay expression: ${(e as Error).message}`);
    }
    spec.retryDelay = retryDelay;
  }
  const delay = getHeader(h, "upstash-delay");
  if (delay !== undefined) {
    const ms = parseDuration(delay);
    if (ms === undefined || ms < 0) throw new PublishError(400, `invalid Upstash-Delay header: ${delay}`);
    spec.delayMs = ms;
  }
  const notBefore = getHeader(h, "upstash-not-before");
  if (notBefore !== undefined) {
    if (!/^\s*\d+(\.\d+)?\s*$/.test(notBefore)) {
      throw new PublishError(400, `invalid Upstash-Not-Before header: ${notBefore}`);
    }
    spec.notBefore = Math.round(Number(notBefore) * 1000);
  }
  const timeout = getHeader(h, "upstash-timeout");
  if (timeout !== undefined) {
    const ms = parseDuration(timeout);
    if (ms === undefined || ms <= 0) throw new PublishError(400, `invalid Upstash-Timeout header: ${timeout}`);
    spec.timeoutMs = ms;
  }
  const callback = getHeader(h, "upstash-callback");
  if (callback) spec.callback = validateCallback("callback", callback);
  const failureCallback = getHeader(h, "upstash-failure-callback");
  if (failureCallback) spec.failureCallback = validateCallback("failure callback", failureCallback);
  const dedupId = getHeader(h, "upstash-deduplication-id");
  if (dedupId) spec.deduplicationId = dedupId;
  if (getHeader(h, "upstash-content-based-deduplication")?.toLowerCase() === "true") {
    spec.contentBasedDeduplication = true;
  }
  const fcKey = getHeader(h, "upstash-flow-control-key");
  if (fcKey) spec.flowControl = parseFlowControlValue(fcKey, getHeader(h, "upstash-flow-control-value"));
  const label = getHeader(h, "upstash-label");
  if (label)
    spec.labels = label
      .split(",")
      .map((l) => l.trim())
      .filter(Boolean);
  return spec;
}

/**
 * Splits a raw request target `/v2/publish/<dest>?<query>` into the destination (keeping the
 * destination's own query) and QStash's config params (`qstash_token`, lower-case `upstash-*`).
 */
export function splitDestinationQuery(rawDest: string, rawQuery: string | undefined) {
  const own: string[] = [];
  const config: Array<[string, string]> = [];
  let token: string | undefined;
  for (const part of (rawQuery ?? "").split("&")) {
    if (!part) continue;
    const eq = part.indexOf("=");
    const rawName = eq < 0 ? part : part.slice(0, eq);
    const name = safeDecode(rawName);
    const value = eq < 0 ? "" : safeDecode(part.slice(eq + 1).replace(/\+/g, " "));
    if (name === "qstash_token") token = value;
    else if (name.startsWith("upstash-")) config.push([name, value]);
    else own.push(part);
  }
  const destination = own.length ? `${rawDest}?${own.join("&")}` : rawDest;
  return { destination, config, token };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
