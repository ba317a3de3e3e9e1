import * as v from "valibot";

/** The bindings celeriac reads from the request's env (Workers vars and secrets, or process env). */
export type Env = Record<string, unknown>;

const url = (name: string) =>
  v.pipe(
    v.string(`${name} is missing`),
    v.nonEmpty(`${name} is missing`),
    v.url(`${name} must be an absolute URL`),
    v.transform((s) => s.replace(/\/+$/, "")),
  );
const secret = (name: string) => v.pipe(v.string(`${name} is missing`), v.nonEmpty(`${name} is missing`));
const optional = (schema: v.GenericSchema<string, string>) => v.optional(v.union([v.literal(""), schema]), "");

/** `name:key,name:key`: named keys so that one can be revoked without touching the others. */
const apiKeys = v.pipe(
  secret("CELERIAC_API_KEYS"),
  v.transform((raw) =>
    raw
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean)
      .map((pair) => {
        const at = pair.indexOf(":");
        return at > 0 ? { name: pair.slice(0, at), key: pair.slice(at + 1) } : { name: "", key: pair };
      }),
  ),
  v.check(
    (keys) => keys.length > 0 && keys.every((k) => k.name !== "" && k.key.length >= 16),
    "CELERIAC_API_KEYS must be a comma-separated list of name:key pairs, each key at least 16 characters",
  ),
);

const EnvSchema = v.object({
  CELERIAC_PUBLIC_URL: url("CELERIAC_PUBLIC_URL"),
  CELERIAC_API_KEYS: apiKeys,
  QSTASH_URL: url("QSTASH_URL"),
  QSTASH_TOKEN: secret("QSTASH_TOKEN"),
  QSTASH_CURRENT_SIGNING_KEY: secret("QSTASH_CURRENT_SIGNING_KEY"),
  QSTASH_NEXT_SIGNING_KEY: secret("QSTASH_NEXT_SIGNING_KEY"),
  UPSTASH_REDIS_REST_URL: url("UPSTASH_REDIS_REST_URL"),
  UPSTASH_REDIS_REST_TOKEN: secret("UPSTASH_REDIS_REST_TOKEN"),
  CELERIAC_REDIS_PREFIX: v.optional(
    v.pipe(v.string(), v.regex(/^[A-Za-z0-9:_.-]{1,64}$/, "CELERIAC_REDIS_PREFIX must be 1 to 64 letters, digits, ':', '_', '.' or '-'")),
    "celeriac:",
  ),
  RESEND_API_KEY: secret("RESEND_API_KEY"),
  RESEND_BASE_URL: optional(url("RESEND_BASE_URL")),
  RESEND_WEBHOOK_SECRET: optional(
    v.pipe(v.string(), v.regex(/^whsec_[A-Za-z0-9+/=]+$/, "RESEND_WEBHOOK_SECRET must look like whsec_<base64>")),
  ),
  CELERIAC_UNBATCHED: v.pipe(
    v.optional(v.string(), ""),
    v.transform((s) =>
      s
        .split(",")
        .map((x) => x.trim())
        .filter(Boolean),
    ),
  ),
  CELERIAC_DASHBOARD_KEY: optional(v.pipe(v.string(), v.minLength(16, "CELERIAC_DASHBOARD_KEY must be at least 16 characters"))),
});

/** The variables the core reads (a task's own are declared by the task). */
export const CORE_VARIABLES = Object.keys(EnvSchema.entries);

/** The core's configuration, parsed from the env; a task's own variables are declared by the task. */
export interface Config {
  /** Origin QStash delivers to; the `sub` claim of every delivery is checked against it. */
  publicUrl: string;
  apiKeys: { name: string; key: string }[];
  qstash: { url: string; token: string; currentSigningKey: string; nextSigningKey: string };
  /**
   * Every Redis key starts with it, so several deployments (or a test run beside the dev stack)
   * can share one database. @default "celeriac:" @example "celeriac-staging:"
   */
  redisPrefix: string;
  redis: { url: string; token: string };
  /** `webhookSecret`: verifies Resend's delivery events (`POST /webhooks/resend`); empty refuses them. */
  resend: { apiKey: string; baseUrl: string; webhookSecret: string };
  /** Tasks that run one delivery at a time although they declare `batch` (`CELERIAC_UNBATCHED`, comma-separated). */
  unbatched: string[];
  /** A key that signs in to `/ui` only (not the API); "" when none is set. */
  dashboardKey: string;
}

/** A configuration problem: every bad variable, by name. */
export class ConfigError extends Error {
  override name = "ConfigError";
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`[celeriac] bad configuration: ${problems.join("; ")}`);
    this.problems = problems;
  }
}

// Parsed once per env object (one per isolate on Workers), never at module scope.
const cache = new WeakMap<object, Config>();

/** Parses the env; throws a {@link ConfigError} naming each missing or malformed variable. */
export function loadConfig(env: Env): Config {
  const hit = cache.get(env);
  if (hit) return hit;
  const parsed = v.safeParse(EnvSchema, env);
  if (!parsed.success) throw new ConfigError(problemsOf(parsed.issues));
  const e = parsed.output;
  const config: Config = {
    publicUrl: e.CELERIAC_PUBLIC_URL,
    apiKeys: e.CELERIAC_API_KEYS,
    qstash: {
      url: e.QSTASH_URL,
      token: e.QSTASH_TOKEN,
      currentSigningKey: e.QSTASH_CURRENT_SIGNING_KEY,
      nextSigningKey: e.QSTASH_NEXT_SIGNING_KEY,
    },
    redisPrefix: e.CELERIAC_REDIS_PREFIX,
    redis: { url: e.UPSTASH_REDIS_REST_URL, token: e.UPSTASH_REDIS_REST_TOKEN },
    resend: { apiKey: e.RESEND_API_KEY, baseUrl: e.RESEND_BASE_URL, webhookSecret: e.RESEND_WEBHOOK_SECRET },
    unbatched: e.CELERIAC_UNBATCHED,
    dashboardKey: e.CELERIAC_DASHBOARD_KEY,
  };
  cache.set(env, config);
  return config;
}

/** Each issue of an env parse as one line that names its variable. */
export function problemsOf(issues: readonly v.BaseIssue<unknown>[]): string[] {
  return issues.map((i) => {
    const key = v.getDotPath(i) ?? "env";
    // valibot's own "Invalid type: Expected string but received undefined" means: not set.
    if (i.kind === "schema" && i.received === "undefined") return `${key} is missing`;
    // valibot's own messages end in `but received "<value>"`, and the value may be a secret:
    // these lines reach the public /healthz, 503 answers and logs.
    const message = i.message.replace(` but received ${i.received}`, "");
    return message.includes(key) ? message : `${key}: ${message}`;
  });
}

/** A task's parsed variables, or why they could not be (each line names the task). */
export type TaskEnv = { ok: true; env: unknown } | { ok: false; problems: string[] };

/** Parses the variables a task declares; a task without `env` gets `{}`. */
export function loadTaskEnv(env: Env, task: { name: string; env?: v.GenericSchema | undefined }): TaskEnv {
  if (!task.env) return { ok: true, env: {} };
  let parsed: ReturnType<typeof v.safeParse<v.GenericSchema>>;
  try {
    parsed = v.safeParse(task.env, env);
  } catch (err) {
    // A transform that throws (JSON.parse of a bad value) is this task's problem, not the relay's.
    // Its message may quote the value, so only the kind of error is said.
    const kind = err instanceof Error ? err.name : typeof err;
    return { ok: false, problems: [`task "${task.name}": its env schema threw a ${kind} on one of its variables`] };
  }
  if (parsed.success) return { ok: true, env: parsed.output };
  return { ok: false, problems: problemsOf(parsed.issues).map((p) => `task "${task.name}": ${p}`) };
}
