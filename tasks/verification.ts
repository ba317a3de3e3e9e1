import * as v from "valibot";
import { defineTask } from "../src/task.ts";

const Env = v.object({
  /** Signs the tokens a correct code earns. Share it with the backend that verifies tokens. */
  VERIFICATION_TOKEN_SECRET: v.pipe(
    v.string("VERIFICATION_TOKEN_SECRET is missing"),
    v.minLength(32, "VERIFICATION_TOKEN_SECRET must be at least 32 characters"),
  ),
  /**
   * Keys the codes (each derived from its task id, which the browser's receipt shows) and their
   * stored hashes. celeriac's alone: a backend that holds the token secret must not be able to
   * work out the codes.
   */
  VERIFICATION_CODE_SECRET: v.pipe(
    v.string("VERIFICATION_CODE_SECRET is missing"),
    v.minLength(32, "VERIFICATION_CODE_SECRET must be at least 32 characters"),
  ),
  /** Named in the subject and the text. */
  VERIFICATION_PRODUCT_NAME: v.optional(v.pipe(v.string(), v.nonEmpty()), "celeriac"),
  /** The sender of the code emails. */
  VERIFICATION_MAIL_FROM: v.optional(v.pipe(v.string(), v.nonEmpty()), "celeriac <verify@celeriac.dev>"),
});

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

/**
 * Mails a 6-digit code to prove the reader owns an address. Public: browsers call it at
 * `POST /v1/public/verification`; `POST /v1/public/verification/check` turns the code into a token.
 * The browser picks only the address and a purpose slug; the text is this file's.
 */
export default defineTask({
  name: "verification",
  input: v.strictObject({
    email: v.pipe(v.string("must be an email address"), v.trim(), v.maxLength(254), v.email("must be an email address")),
    purpose: v.pipe(v.string(), v.regex(/^[a-z][a-z0-9-]*$/, "must be a lower-case slug such as sign-in"), v.maxLength(32)),
  }),
  env: Env,
  // A code lives 10 minutes and someone is waiting for it: retry within seconds (2, 4, 8, 16,
  // 32 s) and give up after about a minute, while asking for a new one still makes sense.
  retries: 5,
  retryDelay: { base: 2, factor: 2, max: 60 },
  public: { recipient: "email", limits: { ip: { requests: 10, window: 600 }, recipient: { requests: 3, window: 600 } }, turnstile: true },
  async run({ email, purpose }, ctx) {
    const { VERIFICATION_CODE_SECRET: secret, VERIFICATION_PRODUCT_NAME: product, VERIFICATION_MAIL_FROM: from } = ctx.env;
    const { code, expiresAt } = await ctx.codes.issue({ subject: email, purpose, secret });
    // Within the cooldown of an earlier request: that code stands, and nothing new goes out.
    if (code === null) return { sent: false };
    const minutes = Math.round((expiresAt - Date.now()) / 60_000);
    const sent = await ctx.mail({
      from,
      to: email,
      subject: `${code} is your ${product} code`,
      text: `Your ${product} code is ${code}.\n\nIt works once, for ${minutes} minutes. If you did not ask for it, ignore this email.\n`,
      html:
        `<p>Your ${escapeHtml(product)} code is</p><p style="font-size:28px;letter-spacing:4px;font-weight:bold">${code}</p>` +
        `<p>It works once, for ${minutes} minutes. If you did not ask for it, ignore this email.</p>`,
    });
    return { sent: true, emailId: sent.id };
  },
});
