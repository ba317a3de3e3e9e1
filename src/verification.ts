import type { Context } from "hono";
import * as v from "valibot";
import { clientIp } from "./client-ip.ts";
import { ApiError } from "./errors.ts";
import { readJson } from "./http.ts";
import { checkCode, codesPrefix, signToken } from "./one-time-codes.ts";
import { joinIssues } from "./options.ts";
import { MAX_PUBLIC_BODY_BYTES, publicConfig } from "./public.ts";
import { DEFAULT_LIMITS, enforceLimits } from "./rate-limit.ts";
import { type AnyTask, toIssues } from "./registry.ts";
import { type AppEnv, taskEnv } from "./relay.ts";

/** The task whose codes the check routes read. */
export const VERIFICATION_TASK = "verification";

const code = v.pipe(v.string("must be the 6-digit code"), v.trim(), v.regex(/^\d{6}$/, "must be the 6-digit code"));

/**
 * Checks a code for `POST /v1/public/verification/check` (`browser`: limited per client IP) and
 * `POST /v1/verification/check` (API key). The body is the task's own fields plus `code`.
 * 200 `{ verified: true, token }` once; 422 wrong (with tries left), 429 dead after 5 wrong
 * tries, 409 used, 410 expired or never sent.
 */
export async function checkVerification(c: Context<AppEnv>, def: AnyTask, browser: boolean) {
  const relay = c.get("relay");
  const secrets = taskEnv(relay, def) as { VERIFICATION_TOKEN_SECRET: string; VERIFICATION_CODE_SECRET: string };
  const entries = (def.input as unknown as { entries: Record<string, v.GenericSchema> }).entries;
  const parsed = v.safeParse(
    v.strictObject({ ...entries, code }, "expected a JSON object { email, purpose, code }"),
    await readJson(c, MAX_PUBLIC_BODY_BYTES),
  );
  if (!parsed.success) {
    const issues = toIssues(parsed.issues);
    throw new ApiError(400, { code: "invalid_check", message: `the check is invalid: ${joinIssues(issues)}`, issues });
  }
  const body = parsed.output as { email: string; purpose: string; code: string };
  if (browser) {
    const ip = clientIp(c.req.raw, publicConfig(c).trustedIpHeader);
    const limited = await enforceLimits(
      relay.services.redis,
      relay.store.prefix,
      `${def.name}-check`,
      { ip: def.public?.limits?.ip ?? DEFAULT_LIMITS.ip, recipient: false, task: false },
      { ip },
    );
    for (const [k, val] of Object.entries(limited.headers)) c.header(k, val);
  }
  const outcome = await checkCode(relay.services.redis, codesPrefix(relay.store.prefix, def.name), {
    secret: secrets.VERIFICATION_CODE_SECRET,
    ...body,
  });
  if (outcome.ok) return c.json({ verified: true, token: await signToken(secrets.VERIFICATION_TOKEN_SECRET, body) });
  if (outcome.reason === "wrong" && outcome.triesLeft > 0) {
    throw new ApiError(422, {
      code: "wrong_code",
      message: `the code is not right; ${outcome.triesLeft} ${outcome.triesLeft === 1 ? "try" : "tries"} left`,
      extra: { triesLeft: outcome.triesLeft },
    });
  }
  switch (outcome.reason) {
    case "wrong": // that was the last try
    case "dead":
      throw new ApiError(429, { code: "too_many_attempts", message: "too many wrong codes: this code no longer works; request a new one" });
    case "used":
      throw new ApiError(409, { code: "code_used", message: "this code has already been used; request a new one" });
    case "missing":
    case "expired":
      throw new ApiError(410, {
        code: "code_expired",
        message: "the code has expired (or none was sent to this address for this purpose); request a new one",
      });
  }
}
