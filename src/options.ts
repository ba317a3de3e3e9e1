import * as v from "valibot";
import { CallbackOption } from "./callback-option.ts";
import { toSeconds } from "./durations.ts";
import { ApiError, type Issue } from "./errors.ts";
import { REDACT_PATH } from "./redact.ts";
import { toIssues } from "./registry.ts";
import { type RetryDelay, retryDelayExpression, retryDelayProblem } from "./retry-delay.ts";

/** Longest delay accepted, seconds: QStash's pay-as-you-go limit (the free plan allows 7 days). */
export const MAX_DELAY_S = 365 * 86_400;
/** Longest a finished record may be kept, seconds (30 days). */
export const MAX_RESULT_TTL_S = 30 * 86_400;
/** Most tasks in one batch. */
export const MAX_BATCH = 100;

const duration = (what: string, max: number) =>
  v.pipe(
    v.union([v.number(), v.string()], `${what} must be seconds or a duration such as "90s" or "1h30m"`),
    v.transform((x) => toSeconds(x)),
    v.number(`${what} must be seconds or a duration such as "90s" or "1h30m"`),
    v.maxValue(max, `${what} must be at most ${max} seconds`),
  );

/** An instant (`notBefore`, a filter's `since`): unix seconds or an ISO 8601 date; becomes ms since the epoch. */
export const instant = (what: string) =>
  v.pipe(
    v.union([v.number(), v.string()], `${what} must be unix seconds or an ISO 8601 date`),
    v.transform((x) => (typeof x === "number" ? x * 1000 : Date.parse(x))),
    v.number(`${what} must be unix seconds or an ISO 8601 date`),
    v.check((ms) => !Number.isNaN(ms) && ms > 0, `${what} must be unix seconds or an ISO 8601 date`),
    v.check((ms) => ms <= Date.now() + MAX_DELAY_S * 1000, `${what} must be within ${MAX_DELAY_S / 86_400} days`),
  );

const optionEntries = {
  payload: v.optional(v.unknown()),
  delay: v.optional(duration("delay", MAX_DELAY_S)),
  notBefore: v.optional(instant("notBefore")),
  retries: v.optional(v.pipe(v.number(), v.integer("retries must be an integer"), v.minValue(0), v.maxValue(20))),
  timeout: v.optional(v.pipe(duration("timeout", 7_200), v.minValue(1, "timeout must be at least 1 second"))),
  idempotencyKey: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(256, "idempotencyKey must be at most 256 characters"))),
  resultTtl: v.optional(
    v.pipe(
      duration("resultTtl", MAX_RESULT_TTL_S),
      v.minValue(60, "resultTtl must be at least 60 seconds"),
      v.transform((s) => Math.ceil(s)),
    ),
  ),
  redact: v.optional(
    v.pipe(
      v.array(
        v.pipe(v.string(), v.regex(REDACT_PATH, "redact paths are dot-separated keys or * (headers.*, body.json.code)")),
        "redact must be a list of payload paths",
      ),
      v.maxLength(20, "redact holds at most 20 paths"),
    ),
  ),
  callback: v.optional(CallbackOption),
  retryDelay: v.optional(
    v.pipe(
      v.unknown(),
      v.rawCheck(({ dataset, addIssue }) => {
        const why = retryDelayProblem(dataset.value);
        if (why) addIssue({ message: `retryDelay ${why}` });
      }),
      v.transform((r) => retryDelayExpression(r as RetryDelay)),
    ),
  ),
};

/** Body of `POST /v1/tasks/:name`. Unknown fields are refused, so a typo is never silently ignored. */
export const EnqueueBody = v.strictObject(optionEntries, "expected a JSON object of known options");
/** One entry of a batch. */
export const BatchItem = v.strictObject(
  { task: v.string("task must be a task name"), ...optionEntries },
  "expected a JSON object with `task` and known options",
);
/** Body of `POST /v1/tasks`: the envelope; each entry is checked on its own with {@link BatchItem}. */
export const BatchBody = v.strictObject(
  {
    tasks: v.pipe(
      v.array(v.unknown(), "tasks must be an array"),
      v.minLength(1, "tasks must hold at least one task"),
      v.maxLength(MAX_BATCH, `tasks must hold at most ${MAX_BATCH} tasks`),
    ),
  },
  "expected a JSON object { tasks: [...] }",
);

export type Options = v.InferOutput<typeof EnqueueBody>;

/** Parses a body against a schema, or throws 400 with each problem by field. */
export function parseOptions<S extends v.GenericSchema>(schema: S, body: unknown): v.InferOutput<S> {
  const r = v.safeParse(schema, body);
  if (r.success) return r.output;
  const issues = toIssues(r.issues);
  throw new ApiError(400, { code: "invalid_options", message: `the request is invalid: ${joinIssues(issues)}`, issues });
}

/** Issues as one line: `path: message; path: message`. */
export const joinIssues = (issues: Issue[]) => issues.map((i) => `${i.path}: ${i.message}`).join("; ");

/** Parses a query string against a schema, or throws 400 `invalid_query` naming each parameter. */
export function parseQuery<S extends v.GenericSchema>(schema: S, query: Record<string, string>): v.InferOutput<S> {
  const r = v.safeParse(schema, query);
  if (r.success) return r.output;
  const issues = toIssues(r.issues);
  throw new ApiError(400, { code: "invalid_query", message: joinIssues(issues), issues });
}
