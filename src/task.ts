import * as v from "valibot";
import type { Config } from "./env.ts";
import type { Issue } from "./errors.ts";
import { cronProblem, isTimeZone } from "./cron.ts";
import type { Mailer } from "./mail.ts";
import type { TaskStore } from "./store/index.ts";

/** A follow-up enqueue from inside a task (chaining). */
export type EnqueueFn = (
  task: string,
  payload: unknown,
  options?: { delay?: number | string; notBefore?: number | string; idempotencyKey?: string },
) => Promise<{ id: string; state: string; runAt: string }>;

export interface Logger {
  info(message: string, data?: Record<string, unknown>): void;
  warn(message: string, data?: Record<string, unknown>): void;
  error(message: string, data?: Record<string, unknown>): void;
}

/** What a task's `run` receives besides its payload. */
export interface TaskContext {
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
  /** Sends mail through Resend with an idempotency key derived from the task id. */
  mail: Mailer;
  /** `fetch`, bound to the timeout signal unless the caller passes its own. */
  fetch: typeof fetch;
  /** Enqueues a follow-up task. */
  enqueue: EnqueueFn;
  config: Config;
  /** The result store (its Redis client is `store.redis`), for tasks that keep state of their own. */
  store: TaskStore;
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

export interface TaskDefinitionInput<S extends v.GenericSchema> {
  /** Kebab-case, equal to the file name in tasks/. */
  name: string;
  /** valibot schema of the payload; a payload that fails it is a 422 at enqueue time. */
  input: S;
  /** Retries after the first attempt. @default 3 */
  retries?: number;
  /** Per-attempt timeout, seconds; the attempt is aborted and retried. @default 30 */
  timeout?: number;
  /** Default delay before the first attempt, seconds. @default 0 */
  delay?: number;
  flowControl?: FlowControl;
  /** How long a finished record (and its result) is kept, seconds. @default 604800 (7 days) */
  resultTtl?: number;
  /** Cron schedules that run this task. @default none */
  schedules?: ScheduleDeclaration[];
  /**
   * Checks that need the configuration (e.g. an allow-list), run at enqueue time after the schema.
   * Return the problems (paths relative to the payload); none means the payload is accepted.
   */
  check?(payload: v.InferOutput<S>, config: Config): Issue[] | undefined;
  /** The work. Its resolved value (JSON) is stored as the task's result. */
  run(payload: v.InferOutput<S>, ctx: TaskContext): Promise<unknown>;
}

export interface TaskDefinition<S extends v.GenericSchema = v.GenericSchema>
  extends Required<Omit<TaskDefinitionInput<S>, "flowControl" | "check">> {
  flowControl?: FlowControl;
  check?: TaskDefinitionInput<S>["check"];
}

const NAME = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;

/** Declares a task type: one file in tasks/, `export default defineTask({...})`. */
export function defineTask<S extends v.GenericSchema>(def: TaskDefinitionInput<S>): TaskDefinition<S> {
  const where = `[celeriac] task "${def.name}"`;
  if (!NAME.test(def.name)) throw new TypeError(`${where}: name must be kebab-case`);
  const whole = (n: number | undefined, min: number, what: string) => {
    if (n !== undefined && !(Number.isInteger(n) && n >= min)) throw new TypeError(`${where}: ${what} must be an integer >= ${min}`);
  };
  whole(def.retries, 0, "retries");
  whole(def.timeout, 1, "timeout");
  whole(def.delay, 0, "delay");
  whole(def.resultTtl, 1, "resultTtl");
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
      throw new TypeError(`${at}: payload does not fit the task: ${checked.issues.map((i) => `${v.getDotPath(i) ?? "payload"}: ${i.message}`).join("; ")}`);
    }
  }
  return {
    schedules: [],
    retries: 3,
    timeout: 30,
    delay: 0,
    resultTtl: 7 * 86_400,
    ...def,
  };
}
