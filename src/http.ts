import type { Context } from "hono";
import { ApiError } from "./errors.ts";

/** Largest request body accepted, bytes: QStash's free-plan message limit. @default 1 MB */
export const MAX_BODY_BYTES = 1_000_000;

/** Reads a JSON body: 415 when not JSON, 413 when over the limit, 400 when it does not parse. */
export async function readJson(c: Context, maxBytes = MAX_BODY_BYTES): Promise<unknown> {
  const type = c.req.header("content-type") ?? "";
  if (!/^application\/(.+\+)?json\b/i.test(type)) {
    throw new ApiError(415, { code: "unsupported_media_type", message: "send the body as JSON with `Content-Type: application/json`" });
  }
  const declared = Number(c.req.header("content-length") ?? 0);
  if (declared > maxBytes) throw tooLarge(maxBytes);
  // Count bytes as they arrive: a chunked body declares no length.
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = c.req.raw.body?.getReader();
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
  const text = new TextDecoder().decode(bytes);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ApiError(400, { code: "invalid_json", message: `the body is not valid JSON: ${(err as Error).message}` });
  }
}

const tooLarge = (max: number) => new ApiError(413, { code: "body_too_large", message: `the body is larger than ${max} bytes` });
