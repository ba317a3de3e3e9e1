import * as v from "valibot";
import { ConfigError, type Env } from "./env.ts";

const origin = v.pipe(
  v.string(),
  v.check((o) => {
    try {
      return new URL(o).origin === o;
    } catch {
      return false;
    }
  }, "CELERIAC_PUBLIC_ORIGINS must list exact origins such as https://shop.example, comma-separated"),
);

const PublicEnv = v.object({
  CELERIAC_PUBLIC_ORIGINS: v.pipe(
    v.optional(v.string(), ""),
    v.transform((s) =>
      s
        .split(",")
        .map((x) => x.trim())
        .filter(Boolean),
    ),
    v.array(origin),
  ),
  CELERIAC_RECEIPT_SECRET: v.pipe(
    v.string("CELERIAC_RECEIPT_SECRET is missing (public tasks sign their receipts with it)"),
    v.minLength(32, "CELERIAC_RECEIPT_SECRET must be at least 32 characters"),
  ),
  CELERIAC_TRUSTED_IP_HEADER: v.pipe(
    v.optional(v.string(), ""),
    v.trim(),
    v.toLowerCase(),
    v.regex(/^$|^[a-z0-9-]+$/, "CELERIAC_TRUSTED_IP_HEADER must be a header name such as x-forwarded-for"),
  ),
  TURNSTILE_SECRET_KEY: v.optional(v.string(), ""),
  TURNSTILE_VERIFY_URL: v.optional(
    v.pipe(v.string(), v.url("TURNSTILE_VERIFY_URL must be an absolute URL")),
    "https://challenges.cloudflare.com/turnstile/v0/siteverify",
  ),
});

/** The variables the browser-facing routes read. */
export const PUBLIC_VARIABLES = Object.keys(PublicEnv.entries);

/** What the browser-facing routes need beyond the core configuration. */
export interface PublicConfig {
  /** Origins allowed for public tasks that name none of their own. */
  origins: string[];
  /** Signs receipts. */
  receiptSecret: string;
  /** A forwarded-for header set by a proxy you trust (Node, Deno); "" trusts none. */
  trustedIpHeader: string;
  /** Turnstile siteverify; `secret` "" turns the bot check off. */
  turnstile: { secret: string; url: string };
}

const cache = new WeakMap<object, PublicConfig>();

/** Parses the public routes' variables from the env, once per env object; names every bad one. */
export function loadPublicConfig(env: Env): PublicConfig {
  const hit = cache.get(env);
  if (hit) return hit;
  const r = v.safeParse(PublicEnv, env);
  if (!r.success) throw new ConfigError(r.issues.map((i) => i.message));
  const e = r.output;
  const config: PublicConfig = {
    origins: e.CELERIAC_PUBLIC_ORIGINS,
    receiptSecret: e.CELERIAC_RECEIPT_SECRET,
    trustedIpHeader: e.CELERIAC_TRUSTED_IP_HEADER,
    turnstile: { secret: e.TURNSTILE_SECRET_KEY, url: e.TURNSTILE_VERIFY_URL },
  };
  cache.set(env, config);
  return config;
}

/** What is wrong with the public routes' variables, each named; empty when they parse. */
export function publicProblems(env: Env): string[] {
  try {
    loadPublicConfig(env);
    return [];
  } catch (err) {
    return err instanceof ConfigError ? err.problems : [String(err)];
  }
}
