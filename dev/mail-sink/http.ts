import type { IncomingMessage, ServerResponse } from "node:http";
import { readBody } from "../read-body.ts";
import { PAGE_CSP } from "./page.ts";
import type { ApiError } from "./types.ts";

// Attachments may total 40 MB, base64 makes that larger still.
const MAX_BODY_BYTES = 60 * 1024 * 1024;

/** The body as text, or null when it is over the size limit. */
export async function readText(req: IncomingMessage): Promise<string | null> {
  return (await readBody(req, MAX_BODY_BYTES))?.toString("utf8") ?? null;
}

export function reply(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": "application/json", ...headers }).end(JSON.stringify(body));
}
export const error = (res: ServerResponse, e: ApiError, headers?: Record<string, string>) => reply(res, e.statusCode, e, headers);

export function page(res: ServerResponse, status: number, html: string): void {
  res.writeHead(status, { "content-type": "text/html; charset=utf-8", "content-security-policy": PAGE_CSP }).end(html);
}

export function parseJson(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}
