import type { Context } from "hono";
import { ApiError, messageOf } from "./errors.ts";

/** Largest request body accepted, bytes: QStash's free-plan message limit. @default 1 MB */
export const MAX_BODY_BYTES = 1_000_000;

/**
 * Deepest nesting of arrays and objects accepted in a JSON body. Deeper documents overflow the
 * stack of whatever walks them later (serialisers, schema checks), so they are refused up front.
 * @default 64
 */
export const MAX_JSON_DEPTH = 64;

/**
 * Reads a JSON body: 415 when not JSON, 413 when over the limit, 400 when it does not parse or
 * nests deeper than {@link MAX_JSON_DEPTH}.
 */
export async function readJson(c: Context, maxBytes = MAX_BODY_BYTES): Promise<unknown> {
  const type = c.req.header("content-type") ?? "";
  if (!/^application\/(.+\+)?json\b/i.test(type)) {
    throw new ApiError(415, { code: "unsupported_media_type", message: "send the body as JSON with `Content-Type: application/json`" });
  }
  const text = new TextDecoder().decode(await readBytes(c, maxBytes));
  const deep = tooDeepAt(text, MAX_JSON_DEPTH);
  if (deep !== undefined) {
    throw new ApiError(400, {
      code: "json_too_deep",
      message: `the body nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels (at character ${deep})`,
    });
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ApiError(400, { code: "invalid_json", message: `the body is not valid JSON: ${(err as Error).message}` });
  }
}

/**
 * Reads a body's raw bytes, counting them as they arrive (a chunked body declares no length):
 * 413 as soon as it passes `maxBytes`, without reading the rest; 400 when it ends early (the
 * client gave up or the connection dropped), which is the client's doing, not a 500 of ours.
 */
export async function readBytes(c: Context, maxBytes: number): Promise<Uint8Array<ArrayBuffer>> {
  const length = c.req.header("content-length");
  const declared = Number(length ?? 0);
  if (declared > maxBytes) throw tooLarge(maxBytes);
  try {
    // A declared length is what the runtime's HTTP framing delivers, no more: within the cap the
    // body is read in one native call (a chunk-by-chunk read costs several times the CPU).
    if (length !== undefined && /^\d+$/.test(length)) return new Uint8Array(await c.req.raw.arrayBuffer());
    return await readCounted(c.req.raw.body, maxBytes);
  } catch (err) {
    throw err instanceof ApiError
      ? err
      : new ApiError(400, { code: "incomplete_body", message: `the body ended before all of it arrived (${messageOf(err)})`, cause: err });
  }
}

async function readCounted(body: ReadableStream<Uint8Array> | null, maxBytes: number): Promise<Uint8Array<ArrayBuffer>> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = body?.getReader();
  for (let r = await reader?.read(); r && !r.done; r = await reader!.read()) {
    size += r.value.byteLength;
    if (size > maxBytes) {
      await reader!.cancel();
      throw tooLarge(maxBytes);
    }
    chunks.push(r.value);
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  return bytes;
}

const tooLarge = (max: number) => new ApiError(413, { code: "body_too_large", message: `the body is larger than ${max} bytes` });

/** Where JSON text first nests deeper than `max`, or undefined. A scan, not a recursive walk. */
export function tooDeepAt(text: string, max: number): number | undefined {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === 92)
        i++; // backslash: skip the escaped character
      else if (ch === 34) inString = false;
    } else if (ch === 34) inString = true;
    else if (ch === 91 || ch === 123) {
      if (++depth > max) return i;
    } else if (ch === 93 || ch === 125) depth--;
  }
  return undefined;
}

/**
 * Why a value cannot travel as a task payload (not JSON, or nested deeper than
 * {@link MAX_JSON_DEPTH}), or undefined when it can.
 */
export function payloadProblem(value: unknown): string | undefined {
  let text: string | undefined;
  try {
    text = JSON.stringify(value ?? null);
  } catch (err) {
    // A cycle, a BigInt, or nesting deep enough to overflow the serialiser's stack.
    return `is not JSON: ${(err as Error).message}`;
  }
  if (text === undefined) return "is not JSON";
  return tooDeepAt(text, MAX_JSON_DEPTH) === undefined ? undefined : `nests deeper than ${MAX_JSON_DEPTH} levels`;
}

/** Reads the raw body as text (UTF-8), counted as it arrives: 413 past `maxBytes`. */
export async function readText(c: Context, maxBytes = MAX_BODY_BYTES): Promise<string> {
  return new TextDecoder().decode(await readBytes(c, maxBytes));
}
