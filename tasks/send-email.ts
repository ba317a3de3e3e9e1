import * as v from "valibot";
import { defineTask, type TaskContext } from "../src/task.ts";

/** `a@b.co` or `Name <a@b.co>`, as Resend accepts them. */
const address = v.pipe(
  v.string("must be an email address"),
  v.trim(),
  v.check((s) => {
    const m = /^(?:[^<>]*<([^<>]+)>|([^<>\s]+))$/.exec(s);
    const addr = m?.[1] ?? m?.[2];
    return addr !== undefined && v.is(v.pipe(v.string(), v.email()), addr.trim());
  }, "must be an email address such as a@b.co or Name <a@b.co>"),
);
const addresses = (max: number) =>
  v.union(
    [
      address,
      v.pipe(v.array(address), v.minLength(1, "must name at least one address"), v.maxLength(max, `must name at most ${max} addresses`)),
    ],
    "must be an email address or a list of them",
  );
const tagPart = v.pipe(v.string(), v.regex(/^[A-Za-z0-9_-]{1,256}$/, "may hold only ASCII letters, digits, _ and - (1 to 256)"));

const Email = v.pipe(
  v.strictObject({
    from: v.optional(address),
    to: addresses(50),
    cc: v.optional(addresses(50)),
    bcc: v.optional(addresses(50)),
    replyTo: v.optional(addresses(50)),
    subject: v.pipe(v.string("must be text"), v.trim(), v.minLength(1, "must not be empty"), v.maxLength(998)),
    html: v.optional(v.pipe(v.string(), v.minLength(1))),
    text: v.optional(v.pipe(v.string(), v.minLength(1))),
    tags: v.optional(v.pipe(v.array(v.strictObject({ name: tagPart, value: tagPart })), v.maxLength(50))),
    headers: v.optional(v.record(v.pipe(v.string(), v.regex(/^[A-Za-z0-9-]+$/, "must be a header name")), v.string())),
    /** Send even to recipients that hard-bounced or complained before. @default false */
    ignoreSuppression: v.optional(v.boolean("must be true or false")),
  }),
  v.check((e) => e.html !== undefined || e.text !== undefined, "needs html or text (or both)"),
);

type Email = v.InferOutput<typeof Email>;

/** The email as Resend takes it, from this task's payload. */
const toResend = (email: Email, defaultFrom: string) => {
  const { replyTo, from, ignoreSuppression: _, ...rest } = email;
  return { ...rest, from: from ?? defaultFrom, ...(replyTo ? { replyTo } : {}) } as Parameters<TaskContext["mail"]>[0];
};

/**
 * Sends one email through Resend; never twice (Idempotency-Key = task id, or the batch id).
 * Coalesced: deliveries arriving together go out in one Resend batch call of up to 100 (permissive
 * validation, so a bad email fails alone), paced to the account's rate (`RESEND_RATE_LIMIT`).
 */
export default defineTask({
  name: "send-email",
  input: Email,
  env: v.object({
    /** Sender used when a task names none. */
    CELERIAC_MAIL_FROM: v.optional(v.pipe(v.string(), v.nonEmpty("CELERIAC_MAIL_FROM is missing")), "celeriac <tasks@celeriac.dev>"),
    /** Requests per second Resend allows the account (its default: 5); every call to Resend is paced to it. */
    RESEND_RATE_LIMIT: v.optional(
      v.pipe(
        v.union([v.string(), v.number()]),
        v.transform(Number),
        v.number(),
        v.integer("RESEND_RATE_LIMIT must be a whole number of requests per second"),
        v.minValue(1, "RESEND_RATE_LIMIT must be at least 1 request per second"),
      ),
      5,
    ),
  }),
  // An order confirmation or a sign-in code is worth little hours late, and Resend's outages are
  // short: retry soon and often, then give up within about 15 minutes (5, 10, 20, 40, 80, 160,
  // 300, 300 s) so the caller learns of the failure while it still matters. A 429 waits for
  // Resend's Retry-After instead.
  retries: 8,
  retryDelay: { base: 5, factor: 2, max: 300 },
  timeout: 30,
  // Every call to Resend shares one pace, whatever task or batch makes it.
  flowControl: (env) => ({ key: "resend", rate: env.RESEND_RATE_LIMIT, period: 1 }),
  batch: { maxSize: 100, maxWaitMs: 200 },
  async runBatch(items, ctx) {
    const sent = await ctx.mailBatch(
      items.map((it) => ({
        email: toResend(it.payload, ctx.env.CELERIAC_MAIL_FROM),
        taskId: it.id,
        ignoreSuppression: it.payload.ignoreSuppression ?? false,
      })),
    );
    return sent.map((s) => ("id" in s ? { result: { emailId: s.id } } : { error: s.error }));
  },
  async run(email, ctx) {
    const sent = await ctx.mail(toResend(email, ctx.env.CELERIAC_MAIL_FROM), { ignoreSuppression: email.ignoreSuppression ?? false });
    return { emailId: sent.id };
  },
});
