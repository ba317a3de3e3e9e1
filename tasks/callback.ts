import * as v from "valibot";
import { defineTask } from "../src/task.ts";
import webhook, { checkTarget, WebhookEnv } from "./webhook.ts";

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
  // The webhook task's policy: a receiver away for a deploy is waited for about 45 minutes.
  retries: webhook.retries,
  retryDelay: webhook.retryDelay,
  timeout: webhook.timeout,
  // Checked when the task with the callback was enqueued and before every attempt, and (with the
  // same allow-list) where the connection is made.
  check: checkTarget,
  allowHosts: (env) => env.CELERIAC_WEBHOOK_ALLOW_HOSTS,
  async run(cb, ctx) {
    // The webhook task signs with its task id as `webhook-id`; a callback's is `<task id>.<event>`.
    return webhook.run({ url: cb.url, method: "POST", body: { json: cb.event } }, { ...ctx, id: cb.webhookId });
  },
});
