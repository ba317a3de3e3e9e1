import * as v from "valibot";
import { defineTask } from "../src/task.ts";
import webhook, { WebhookEnv, checkTarget } from "./webhook.ts";

/**
 * Tells a caller how its task went: POSTs one event (JSON) to the task's `callback` URL through
 * the webhook task's own code, so it is signed the same way (Standard Webhooks,
 * `CELERIAC_WEBHOOK_SECRET`) and its answers mean the same (2xx done; 408, 429, 5xx retried).
 * Only celeriac enqueues it (src/callbacks.ts).
 */
export default defineTask({
  name: "callback",
  internal: true,
  input: v.strictObject({
    url: v.string(),
    /** `<task id>.<event>`: the same on every retry, so receivers drop duplicates. */
    webhookId: v.pipe(v.string(), v.minLength(1)),
    event: v.record(v.string(), v.unknown()),
  }),
  env: WebhookEnv,
  // As the webhook task's: a receiver away for a deploy is waited for about 45 minutes (10, 20,
  // 40 … 1280 s); a 429 or 503 with Retry-After waits as long as it asks.
  retries: 8,
  retryDelay: { base: 10, factor: 2, max: 1800 },
  timeout: 30,
  // Checked when the task with the callback was enqueued, and again before every attempt.
  check: checkTarget,
  // And where the connection is made: the callback task's fetch goes through the same guard.
  allowHosts: (env) => env.CELERIAC_WEBHOOK_ALLOW_HOSTS,
  async run(cb, ctx) {
    // The webhook task signs with its task id as `webhook-id`; a callback's is `<task id>.<event>`.
    return webhook.run({ url: cb.url, method: "POST", body: { json: cb.event } }, { ...ctx, id: cb.webhookId });
  },
});
