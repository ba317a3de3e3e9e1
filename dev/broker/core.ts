/** What every route handler gets: the broker's parts, and the request in a convenient form. */
import type { Dispatcher } from "./delivery.ts";
import type { RawHeaders } from "./headers.ts";
import type { Scheduler } from "./schedules.ts";
import type { Store } from "./store.ts";

export interface Core {
  store: Store;
  dispatcher: Dispatcher;
  scheduler: Scheduler;
  token: string;
  keys: { current: string; next: string };
  dedupWindowMs: number;
  timeScale: number;
}

export interface Ctx {
  method: string;
  /** The request target's path exactly as sent (not decoded). */
  rawPath: string;
  rawQuery: string | undefined;
  query: URLSearchParams;
  headers: RawHeaders;
  body: Buffer;
  ip: string;
}

export interface Reply {
  status: number;
  json?: unknown;
}

export const ok = (json: unknown, status = 200): Reply => ({ status, json });
export const fail = (status: number, error: string): Reply => ({ status, json: { error } });

/** Repeated and comma-separated query values (`?messageIds=a&messageIds=b`, `?ids=a,b`). */
export function many(q: URLSearchParams, name: string): string[] {
  return q
    .getAll(name)
    .flatMap((v) => v.split(","))
    .map((v) => v.trim())
    .filter(Boolean);
}

/** Page over a list with an offset cursor. */
export function page<T>(items: T[], q: URLSearchParams, defaultCount = 100) {
  const count = Math.max(1, Math.min(1000, Number(q.get("count")) || defaultCount));
  const start = Math.max(0, Number(q.get("cursor")) || 0);
  const slice = items.slice(start, start + count);
  const cursor = start + count < items.length ? String(start + count) : undefined;
  return { slice, cursor };
}
