// The one module a task imports: how to declare a task, what its `run` receives, and the errors
// it may throw. Everything else a task needs reaches it through `ctx`.
import * as v from "valibot";
import type { CallbackEvent } from "./callback-option.ts";
import { cronProblem, isTimeZone } from "./cron.ts";
import type { Issue } from "./errors.ts";
import type { BatchMailer, Mailer } from "./mail.ts";
import type { OneTimeCodes } from "./one-time-codes.ts";
import { type PublicOptions, publicProblems } from "./public-task.ts";
import { REDACT_PATH } from "./redact.ts";
import { type RetryDelay, retryDelayExpression, retryDelayProblem } from "./retry-delay.ts";
import type { DayReport } from "./stats.ts";
import type { TaskState } from "./store/record.ts";

export type { CallbackEvent } from "./callback-option.ts";
export { type Issue, messageOf, PermanentError, RateLimited, RetryLater, retryAfterSeconds } from "./errors.ts";
export type { BatchEmail, BatchMailer, BatchSent, Mailer } from "./mail.ts";
export type { OneTimeCodes } from "./one-time-codes.ts";
export { refusalOf } from "./outbound.ts";
export { OPEN_RELAY_ACK, type PublicOptions } from "./public-task.ts";
export type { Limit, PublicLimits } from "./rate-limit.ts";
export type { AnyTask } from "./registry.ts";
export type { Backoff, RetryDelay } from "./retry-delay.ts";
export { parseTarget, refuseTarget } from "./ssrf.ts";
export type { DayReport, TaskDayStats } from "./stats.ts";
export { utcDay } from "./store/index.ts";
export { signWebhook } from "./webhook-signature.ts";

/** A task's env schema: a valibot object of the variables it needs. */
export type EnvSchema = v.GenericSchema<unknown, Record<string, unknown>>;
/** The parsed variables of a task (none when it declares no `env`). */
export type EnvOf<E> = E extends EnvSchema ? v.InferOutput<E> : Record<never, never>;

/** Options of a follow-up enqueue; the same as the API's, defaults from the target task. */
export interface EnqueueOptions {
  /** Seconds, or a duration such as "90s" or "1h30m". @default the task's `delay` */
  delay?: number | string;
  /** Unix seconds or an ISO 8601 date; wins over `delay`. */
  notBefore?: number | string;
  /** @default `<this task's id>/enqueue/<n>`: a retried run finds its earlier follow-ups */
  idempotencyKey?: string;
  retries?: number;
  /** Seconds or a duration. */
  timeout?: number | string;
  retryDelay?: RetryDelay;
  /**
   * Where to POST a signed event when the follow-up ends (and, for an email, when its delivery
   * status changes): a URL, or `{ url, events }`. @default none
   * @example "https://shop.example/hooks/celeriac"
   */
  callback?: string | { url: string; events?: CallbackEvent[] };
}

/**
 * Enqueues a follow-up task, named by its definition: the payload is type-checked against it
 * (`ctx.enqueue(sendEmail, { to, subject, text })`), and checked again at run time.
 */
export type Enqueue = <S extends v.GenericSchema>(
  task: TaskDefinition<S, any>,
  payload: v.InferInput<S>,
  options?: EnqueueOptions,
) => Promise<{ id: string; state: TaskState; runAt: string }>;

export interface Logger {
  info(message: string, data?: Record<string, unknown>): void;
  warn(message: string, data?: Record<string, unknown>): void;
  error(message: string, data?: Record<string, unknown>): void;
}

/** A small key-value store of the task's own: keys never meet another task's. Values are JSON. */
export interface TaskKv {
  get<T = unknown>(key: string): Promise<T | undefined>;
  /** Stores `value` (JSON) for `ttl` seconds. @default ttl 604800 (7 days) */
  set(key: string, value: unknown, options?: { ttl?: number }): Promise<void>;
  delete(key: string): Promise<void>;
}

/** Read-only access to the relay's counters. */
export interface StatsReader {
  /** One UTC day's figures (`YYYY-MM-DD`), per task type. */
  day(date: string): Promise<DayReport>;
}

/** What a task's `run` receives besides its payload. */
export interface TaskContext<Env = Record<never, never>> {
  /** The task id: stable across retries, so it doubles as the idempotency key of side effects. */
  id: string;
  /** 1 for the first attempt. */
  attempt: number;
  /** QStash message id of this delivery. */
  messageId: string;
  /** Set when the run came from a schedule. */
  scheduleId?: string;
  /** Aborts when the task's timeout is reached; pass it to fetch and friends. */
  signal: AbortSignal;
  log: Logger;
  /** This task's own variables, as its `env` schema parsed them. */
  env: Env;
  /** Sends mail through Resend with an idempotency key derived from the task id. */
  mail: Mailer;
  /** `fetch`, bound to the timeout signal unless the caller passes its own. */
  fetch: typeof fetch;
  enqueue: Enqueue;
  kv: TaskKv;
  /** One-time codes (verification codes), kept as keyed hashes under this task's keys. */
  codes: OneTimeCodes;
  stats: StatsReader;
}

/** Flow control for a task type: QStash keeps at most `parallelism` in flight and `rate` per `period`. */
export interface FlowControl {
  /** Shared key; tasks with the same key share the limits. @default the task name */
  key?: string;
  /** Deliveries in flight at once. */
  parallelism?: number;
  /** Deliveries started per `period`. */
  rate?: number;
  /** Period of `rate`, seconds. @default 1 */
  period?: number;
}

/**
 * Coalescing: deliveries of a batched task join an outbox, and one flush per `key` and window runs
 * `runBatch` over up to `maxSize` of them (src/batch.ts says how this stays effectively once).
 * @example batch: { maxSize: 100, maxWaitMs: 200 } // Resend's batch endpoint takes 100 emails
 */
export interface BatchOptions<P = unknown> {
  /** Most items in one `runBatch` call. */
  maxSize: number;
  /**
   * Longest a lone item waits for company before its batch is sent, milliseconds. Under load a
   * batch goes as soon as the task's flow control allows, with every item then waiting (up to maxSize).
   * @default 200
   */
  maxWaitMs?: number;
  /** Items with different keys never share a batch (e.g. one per sending account). @default one outbox per task */
  key?: (payload: P) => string;
}

/** One item of a batch: a task of its own, with its own record, state and result. */
export interface BatchItem<P = unknown> {
  id: string;
  payload: P;
  /** This task's attempt number (0: the batch's retry no longer runs it, e.g. it was cancelled). */
  attempt: number;
}

/** Each item's own outcome, in the order of the items: a result, or an error (as `run` would throw). */
export type BatchOutcome = { result: unknown } | { error: unknown };

/** What `runBatch` receives besides the items. */
export interface BatchContext<Env = Record<never, never>> {
  /** Fixed when the batch is formed and the same on every retry of its flush: the idempotency key of its side effects. */
  batchId: string;
  /** 1 for the flush's first attempt. */
  attempt: number;
  signal: AbortSignal;
  log: Logger;
  /** This task's own variables, as its `env` schema parsed them. */
  env: Env;
  /**
   * Sends up to 100 emails in one Resend batch call keyed by the batch id; one bad email fails
   * alone. Each names its item's task (`taskId`: its `celeriac_task` tag, so Resend's events find
   * it), and one to a suppressed recipient fails alone, unsent, unless `ignoreSuppression`.
   * @example ctx.mailBatch(items.map((it) => ({ email: toResend(it.payload), taskId: it.id })))
   */
  mailBatch: BatchMailer;
  fetch: typeof fetch;
}

/** A cron schedule declared next to its task; `schedules:sync` makes QStash match it. */
export interface ScheduleDeclaration {
  /** Stable kebab-case name; the QStash schedule id is `celeriac-<task>-<name>`. */
  name: string;
  /** 5-field cron expression, evaluated by QStash. */
  cron: string;
  /** IANA time zone the cron is read in. @default "UTC" */
  timezone?: string;
  /** The payload every run receives; checked against the task's schema when the app loads. */
  payload?: unknown;
}

export interface TaskDefinitionInput<S extends v.GenericSchema, E extends EnvSchema | undefined = undefined, N extends string = string> {
  /** Kebab-case, equal to the file name in tasks/; kept as a literal type, so clients are typed by it. */
  name: N;
  /** valibot schema of the payload; a payload that fails it is a 422 at enqueue time. */
  input: S;
  /**
   * The variables this task needs, e.g. `v.object({ SMS_TOKEN: v.string() })`: parsed with the
   * core's once per isolate and handed to `run` as `ctx.env`. When one is missing or malformed,
   * `/healthz` names it with the task, and only this task's routes answer 503. @default none
   */
  env?: E;
  /** Retries after the first attempt. @default 3 */
  retries?: number;
  /** Wait before each retry. @default { base: 10, factor: 2, max: 3600 } (seconds) */
  retryDelay?: RetryDelay;
  /** Per-attempt timeout, seconds; the attempt is aborted and retried. @default 30 */
  timeout?: number;
  /** Default delay before the first attempt, seconds. @default 0 */
  delay?: number;
  /**
   * QStash flow control for this task's deliveries (a batched task's: its flushes); a function
   * reads it from the task's variables.
   * @example flowControl: (env) => ({ key: "resend", rate: env.RESEND_RATE_LIMIT })
   */
  flowControl?: FlowControl | ((env: EnvOf<E>) => FlowControl);
  /** How long a finished record (and its result) is kept, seconds. @default 604800 (7 days) */
  resultTtl?: number;
  /**
   * Payload paths that hold secrets (dot paths, `*` for every key): the task runs with them, but
   * the record keeps "[redacted]" in their place, so no API answer, log or page shows them.
   * Callers may add paths per enqueue (`redact`). At most 30 paths. @default none @example ["headers.*", "body.json.code"]
   */
  redact?: string[];
  /** Cron schedules that run this task. @default none */
  schedules?: ScheduleDeclaration[];
  /** Makes the task callable from browsers at `POST /v1/public/<name>`. @default not public */
  public?: PublicOptions;
  /**
   * Only celeriac itself enqueues it (e.g. the callback task): the API, batches and `ctx.enqueue`
   * answer as if there were no such task. @default false
   */
  internal?: boolean;
  /**
   * Checks that need the task's variables (e.g. an allow-list), run at enqueue time after the
   * schema and again before every attempt. Return the problems (paths relative to the payload).
   */
  check?(payload: v.InferOutput<S>, env: EnvOf<E>): Issue[] | undefined;
  /**
   * Hosts `ctx.fetch` may reach although they are private or loopback (`host` or `host:port`).
   * Every other address a name resolves to is checked where the connection is made. @default none
   * @example (env) => env.MY_TASK_ALLOW_HOSTS
   */
  allowHosts?(env: EnvOf<E>): readonly string[];
  /** The work. Its resolved value (JSON) is stored as the task's result. */
  run(payload: v.InferOutput<S>, ctx: TaskContext<EnvOf<E>>): Promise<unknown>;
  /** Coalesce deliveries into batches; needs `runBatch`. @default none: each delivery runs `run` */
  batch?: BatchOptions<v.InferOutput<S>>;
  /**
   * Runs one batch: one outcome per item, in order. Throwing fails the whole call: a
   * `RateLimited` waits, a `PermanentError` fails every item, anything else retries the batch.
   */
  runBatch?(items: BatchItem<v.InferOutput<S>>[], ctx: BatchContext<EnvOf<E>>): Promise<BatchOutcome[]>;
}

/** A declared task type, defaults applied (`retryDelay` as QStash's expression). */
export interface TaskDefinition<S extends v.GenericSchema = any, E extends EnvSchema | undefined = any, N extends string = string>
  extends Required<
    Omit<
      TaskDefinitionInput<S, E, N>,
      "flowControl" | "check" | "env" | "retryDelay" | "public" | "allowHosts" | "redact" | "batch" | "runBatch"
    >
  > {
  env?: E;
  /** The `Upstash-Retry-Delay` expression. */
  retryDelay: string;
  flowControl?: TaskDefinitionInput<S, E>["flowControl"];
  public?: PublicOptions;
  check?: TaskDefinitionInput<S, E>["check"];
  allowHosts?: TaskDefinitionInput<S, E>["allowHosts"];
  redact?: string[];
  batch?: Required<Omit<BatchOptions<v.InferOutput<S>>, "key">> & Pick<BatchOptions<v.InferOutput<S>>, "key">;
  runBatch?: TaskDefinitionInput<S, E>["runBatch"];
}

const NAME = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;

/** Declares a task type: one file in tasks/, `export default defineTask({...})`. */
export function defineTask<S extends v.GenericSchema, E extends EnvSchema | undefined = undefined, const N extends string = string>(
  def: TaskDefinitionInput<S, E, N>,
): TaskDefinition<S, E, N> {
  const where = `[celeriac] task "${def.name}"`;
  if (!NAME.test(def.name)) throw new TypeError(`${where}: name must be kebab-case`);
  const whole = (n: number | undefined, min: number, what: string) => {
    if (n !== undefined && !(Number.isInteger(n) && n >= min)) throw new TypeError(`${where}: ${what} must be an integer >= ${min}`);
  };
  whole(def.retries, 0, "retries");
  whole(def.timeout, 1, "timeout");
  whole(def.delay, 0, "delay");
  whole(def.resultTtl, 1, "resultTtl");
  if (def.resultTtl !== undefined && def.resultTtl > 10 * 365 * 86_400) throw new TypeError(`${where}: resultTtl must be at most 10 years`);
  // With the 20 an enqueue may add, a message stays within the 50 paths its delivery accepts.
  if ((def.redact?.length ?? 0) > 30) throw new TypeError(`${where}: redact holds at most 30 paths`);
  for (const p of def.redact ?? [])
    if (!REDACT_PATH.test(p)) throw new TypeError(`${where}: redact path "${p}" must be dot-separated keys or *`);
  const delayProblem = def.retryDelay === undefined ? undefined : retryDelayProblem(def.retryDelay);
  if (delayProblem) throw new TypeError(`${where}: retryDelay ${delayProblem}`);
  const names = new Set<string>();
  for (const s of def.schedules ?? []) {
    const at = `${where}, schedule "${s.name}"`;
    if (!NAME.test(s.name)) throw new TypeError(`${at}: name must be kebab-case`);
    if (names.has(s.name)) throw new TypeError(`${at}: declared twice`);
    names.add(s.name);
    const cron = cronProblem(s.cron);
    if (cron) throw new TypeError(`${at}: cron ${cron}`);
    if (s.timezone !== undefined && !isTimeZone(s.timezone)) throw new TypeError(`${at}: unknown time zone "${s.timezone}"`);
    const checked = v.safeParse(def.input, s.payload);
    if (!checked.success) {
      throw new TypeError(
        `${at}: payload does not fit the task: ${checked.issues.map((i) => `${v.getDotPath(i) ?? "payload"}: ${i.message}`).join("; ")}`,
      );
    }
  }
  if (def.public) {
    const problems = publicProblems(def.name, def.input, def.public);
    if (problems.length) throw new TypeError(problems.join("\n"));
  }
  if (def.batch) {
    if (!def.runBatch) throw new TypeError(`${where}: batch needs runBatch`);
    whole(def.batch.maxSize, 1, "batch.maxSize");
    whole(def.batch.maxWaitMs, 0, "batch.maxWaitMs");
  }
  const { batch, ...rest } = def;
  return {
    schedules: [],
    internal: false,
    retries: 3,
    timeout: 30,
    delay: 0,
    resultTtl: 7 * 86_400,
    ...rest,
    retryDelay: retryDelayExpression(def.retryDelay),
    ...(batch ? { batch: { maxWaitMs: 200, ...batch } } : {}),
  };
}
