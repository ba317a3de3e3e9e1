// The "Add a task" example of the README: a task with a secret of its own. One file, plus one
// line where the app's tasks are listed (here, the test's createApp call).
import * as v from "valibot";
import { defineTask, PermanentError, RateLimited, retryAfterSeconds } from "../../src/task.ts";

export default defineTask({
  name: "send-sms",
  input: v.strictObject({ to: v.pipe(v.string(), v.regex(/^\+\d{6,15}$/, "must be a phone number like +15550100")), text: v.string() }),
  // Only this task sees these; when one is missing, /healthz names it and only send-sms answers 503.
  env: v.object({
    SMS_TOKEN: v.pipe(v.string(), v.minLength(8, "SMS_TOKEN must be at least 8 characters")),
    SMS_API_URL: v.pipe(v.string(), v.url("SMS_API_URL must be a URL")),
  }),
  retries: 4,
  retryDelay: { base: 5, factor: 3, max: 600 },
  // The provider is the operator's choice, not a caller's: ctx.fetch may reach it even on a
  // private address (every other private address stays refused).
  allowHosts: (env) => [new URL(env.SMS_API_URL).host],
  async run({ to, text }, ctx) {
    const res = await ctx.fetch(ctx.env.SMS_API_URL, {
      method: "POST",
      headers: { authorization: `Bearer ${ctx.env.SMS_TOKEN}`, "content-type": "application/json", "idempotency-key": ctx.id },
      body: JSON.stringify({ to, text }),
    });
    if (res.status === 429) throw new RateLimited({ after: retryAfterSeconds(res.headers.get("retry-after")) ?? 30 });
    if (res.status >= 400 && res.status < 500) throw new PermanentError(`SMS API answered ${res.status}`, `http_${res.status}`);
    if (!res.ok) throw new Error(`SMS API answered ${res.status}`);
    return { sms: ((await res.json()) as { id: string }).id };
  },
});
