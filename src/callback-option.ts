// The `callback` enqueue option: its schema and the checks of its URL. Kept apart from
// src/callbacks.ts (which enqueues) so the options module can use it without a cycle.
import * as v from "valibot";
import type { Issue } from "./errors.ts";
import { refuseTarget } from "./ssrf.ts";

/** The name of the task that sends callbacks (tasks/callback.ts). */
export const CALLBACK_TASK = "callback";

export const CALLBACK_EVENTS = [
  "task.succeeded",
  "task.failed",
  "task.cancelled",
  "email.delivered",
  "email.bounced",
  "email.complained",
  "email.delivery_delayed",
] as const;
export type CallbackEvent = (typeof CALLBACK_EVENTS)[number];

/** Where a task's callbacks go and which events they carry. */
export interface CallbackSpec {
  url: string;
  events: CallbackEvent[];
}

/** Longest callback URL accepted (characters), as for the webhook task. */
const MAX_URL = 2_048;

/**
 * The `callback` enqueue option: a URL (every event), or `{ url, events }`.
 * @example "https://shop.example/hooks/celeriac"
 * @example { "url": "https://shop.example/hooks/celeriac", "events": ["task.failed", "email.bounced"] }
 */
export const CallbackOption = v.pipe(
  v.union(
    [
      v.string(),
      v.strictObject({
        url: v.string("callback.url must be a URL"),
        events: v.optional(
          v.pipe(
            v.array(v.picklist(CALLBACK_EVENTS, `callback.events may hold ${CALLBACK_EVENTS.join(", ")}`)),
            v.minLength(1, "callback.events must name at least one event"),
          ),
        ),
      }),
    ],
    "callback must be a URL or { url, events }",
  ),
  v.transform(
    (c): CallbackSpec =>
      typeof c === "string" ? { url: c, events: [...CALLBACK_EVENTS] } : { url: c.url, events: [...new Set(c.events ?? CALLBACK_EVENTS)] },
  ),
);

/** Why a callback URL is refused (scheme, length, credentials, the SSRF guard), as issues on `path`. */
export function callbackIssues(spec: CallbackSpec, allowHosts: readonly string[], path: string): Issue[] {
  if (spec.url.length > MAX_URL) return [{ path, message: `the URL must be at most ${MAX_URL} characters` }];
  const why = refuseTarget(spec.url, allowHosts);
  return why ? [{ path, message: why }] : [];
}
