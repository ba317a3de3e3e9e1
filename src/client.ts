// `celeriac/client`: a typed client of celeriac's HTTP API on web-standard `fetch` alone, so it
// runs in Workers, Deno, Node and browsers. Payloads are typed by the task definitions:
//   import type { tasks } from "celeriac/tasks";
//   const celeriac = createClient<typeof tasks>({ url, apiKey });
//   await celeriac.enqueue("send-email", { to, subject, text });   // a wrong payload fails to compile
import type { InferInput } from "valibot";
import { ConnectionError, errorFor, WaitTimeoutError } from "./client-errors.ts";
import type { Enqueued } from "./enqueue-core.ts";
import { type ErrorBody, retryAfterSeconds } from "./errors.ts";
import type { EnqueueBody } from "./options.ts";
import type { AnyTask } from "./registry.ts";
import type { RetryDelay } from "./retry-delay.ts";
import type { SyncReport, scheduleStatus } from "./schedules.ts";
import type { TaskRecord, TaskState } from "./store/record.ts";

export * from "./client-errors.ts";
export type { Enqueued, SyncReport, TaskRecord, TaskState };

/**
 * Options of an enqueue, as `POST /v1/tasks/:name` takes them (inferred from the route's own
 * schema): `delay`, `notBefore`, `retries`, `timeout`, `retryDelay`, `idempotencyKey`,
 * `resultTtl`, `redact`.
 */
export type EnqueueOptions = Omit<InferInput<typeof EnqueueBody>, "payload" | "retryDelay"> & { retryDelay?: RetryDelay };

/** The task names of a list of task definitions. */
export type TaskName<T extends readonly AnyTask[]> = T[number]["name"];
/** The payload a task accepts (its schema's input type); `unknown` for an untyped client. */
export type PayloadOf<T extends readonly AnyTask[], K extends TaskName<T>> =
  string extends TaskName<T> ? unknown : InferInput<Extract<T[number], { name: K }>["input"]>;
/** One entry of {@link CeleriacClient.enqueueMany}: a task, its payload and its options. */
export type BatchEntry<T extends readonly AnyTask[]> = {
  [K in TaskName<T>]: { task: K; payload: PayloadOf<T, K> } & EnqueueOptions;
}[TaskName<T>];

export interface ClientOptions {
  /** celeriac's origin, e.g. `https://celeriac.example.workers.dev`. */
  url: string;
  /** An API key of `CELERIAC_API_KEYS` (the key part). Needed for everything but public tasks. */
  apiKey?: string;
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
}

export interface ListQuery {
  state?: TaskState;
  task?: string;
  /** 1 to 100. @default 20 */
  limit?: number;
  /** The `cursor` of the previous page. */
  cursor?: string;
}

export interface WaitOptions {
  /** Give up after this long, ms; throws {@link WaitTimeoutError}. @default 60000 */
  timeout?: number;
  /** Between polls, ms. @default 500 */
  interval?: number;
  /** Called with each record polled (e.g. to print progress). */
  onProgress?: (record: TaskRecord) => void;
  signal?: AbortSignal;
}

export type ScheduleStatus = Awaited<ReturnType<typeof scheduleStatus>>;

/** What a public call answers: a receipt that reads the task's state, and that state. */
export interface PublicEnqueued {
  receipt: string;
  state: TaskState;
}

export interface PublicCallOptions {
  /** The Turnstile widget's token, for a task that asks for the bot check (`cf-turnstile-response`). */
  turnstileToken?: string;
}

/** A verification code as `POST /v1/public/verification/check` takes it. */
export interface CodeCheck {
  email: string;
  /** The purpose slug the code was requested for, e.g. `sign-in`. */
  purpose: string;
  /** The 6 digits from the email. */
  code: string;
}

const FINAL: readonly TaskState[] = ["succeeded", "failed", "cancelled"];

/** A client of one celeriac deployment. `T`: the task definitions it serves (`typeof tasks`). */
export class CeleriacClient<T extends readonly AnyTask[] = readonly AnyTask[]> {
  readonly #url: string;
  readonly #apiKey: string | undefined;
  readonly #fetch: typeof fetch;

  constructor(options: ClientOptions) {
    this.#url = options.url.replace(/\/+$/, "");
    this.#apiKey = options.apiKey;
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  }

  /** Enqueues one task (`POST /v1/tasks/:name`). A repeated idempotency key answers the first task. */
  enqueue<K extends TaskName<T>>(task: K, payload: PayloadOf<T, K>, options: EnqueueOptions = {}): Promise<Enqueued> {
    return this.#call("POST", `/v1/tasks/${encodeURIComponent(task)}`, { ...options, payload });
  }

  /** Enqueues up to 100 tasks in one call (`POST /v1/tasks`): all of them, or none when one is invalid. */
  async enqueueMany(entries: BatchEntry<T>[]): Promise<Enqueued[]> {
    return (await this.#call<{ tasks: Enqueued[] }>("POST", "/v1/tasks", { tasks: entries })).tasks;
  }

  /** A task's record; {@link NotFoundError} (`code: "unknown"`) for an id never seen. */
  get(id: string): Promise<TaskRecord> {
    return this.#call("GET", `/v1/tasks/${encodeURIComponent(id)}`);
  }

  /** Records, newest first; pass `cursor` back for the next page. */
  list(query: ListQuery = {}): Promise<{ tasks: TaskRecord[]; cursor?: string }> {
    const q = new URLSearchParams(
      Object.entries(query)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => [k, String(v)]),
    );
    return this.#call("GET", `/v1/tasks${q.size ? `?${q}` : ""}`);
  }

  /** Cancels a task that has not started. */
  cancel(id: string): Promise<TaskRecord> {
    return this.#call("DELETE", `/v1/tasks/${encodeURIComponent(id)}`);
  }

  /** Runs a failed or cancelled task again under the same id. */
  retry(id: string): Promise<TaskRecord> {
    return this.#call("POST", `/v1/tasks/${encodeURIComponent(id)}/retry`);
  }

  /** Polls until the task is succeeded, failed or cancelled, and returns that record. */
  async wait(id: string, options: WaitOptions = {}): Promise<TaskRecord> {
    const deadline = Date.now() + (options.timeout ?? 60_000);
    let last: TaskRecord | undefined;
    for (;;) {
      options.signal?.throwIfAborted();
      last = await this.get(id);
      options.onProgress?.(last);
      if (FINAL.includes(last.state)) return last;
      const left = deadline - Date.now();
      if (left <= 0) throw new WaitTimeoutError(`[celeriac] task ${id} is still ${last.state} after ${options.timeout ?? 60_000} ms`, last);
      await sleep(Math.min(options.interval ?? 500, left), options.signal);
    }
  }

  /**
   * The browsers' routes, which take no API key (none is sent): a public task with its payload as
   * the body, its receipt, and the verification-code check. A page on an allowed origin may call
   * them; so may a server (it sends no `Origin`), within the same limits.
   */
  readonly public = {
    enqueue: <K extends TaskName<T>>(task: K, payload: PayloadOf<T, K>, options: PublicCallOptions = {}): Promise<PublicEnqueued> =>
      this.#call("POST", `/v1/public/${encodeURIComponent(task)}`, payload, {
        auth: false,
        ...(options.turnstileToken ? { headers: { "cf-turnstile-response": options.turnstileToken } } : {}),
      }),
    receipt: (receipt: string): Promise<{ state: TaskState }> =>
      this.#call("GET", `/v1/public/receipts/${encodeURIComponent(receipt)}`, undefined, { auth: false }),
    checkCode: (check: CodeCheck): Promise<{ verified: true; token: string }> =>
      this.#call("POST", "/v1/public/verification/check", check, { auth: false }),
  };

  /** Dead letters: failed tasks QStash gave up on. */
  readonly dead = {
    list: (
      query: { task?: string; code?: string; since?: string | number; limit?: number; cursor?: string } = {},
    ): Promise<{ tasks: TaskRecord[]; cursor?: string }> => {
      const q = new URLSearchParams(
        Object.entries(query)
          .filter(([, v]) => v !== undefined)
          .map(([k, v]) => [k, String(v)]),
      );
      return this.#call("GET", `/v1/dead${q.size ? `?${q}` : ""}`);
    },
    /** Replays one dead letter under its id. */
    replay: (id: string): Promise<TaskRecord> => this.#call("POST", `/v1/dead/${encodeURIComponent(id)}/replay`),
    /** Replays every dead letter matching `filter` (or only counts them with `dryRun`). */
    replayMatching: (
      filter: { task?: string; code?: string; since?: string | number } = {},
      dryRun = false,
    ): Promise<{ matched: number; replayed?: number; ids: string[] }> => this.#call("POST", "/v1/dead/replay", { filter, dryRun }),
  };

  /** Declared schedules against QStash's, and syncing them. */
  readonly schedules = {
    list: (): Promise<ScheduleStatus> => this.#call("GET", "/v1/schedules"),
    sync: (): Promise<SyncReport> => this.#call("POST", "/v1/schedules/sync"),
  };

  async #call<R>(method: string, path: string, body?: unknown, how: { auth?: boolean; headers?: Record<string, string> } = {}): Promise<R> {
    const headers: Record<string, string> = { accept: "application/json", ...how.headers };
    if (this.#apiKey && how.auth !== false) headers.authorization = `Bearer ${this.#apiKey}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    let res: Response;
    try {
      res = await this.#fetch(this.#url + path, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    } catch (err) {
      const why =
        err instanceof Error
          ? `${err.message}${(err.cause as { code?: string } | undefined)?.code ? ` (${(err.cause as { code: string }).code})` : ""}`
          : String(err);
      throw new ConnectionError(`[celeriac] cannot reach ${this.#url}: ${why}`, { cause: err });
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      throw new ConnectionError(`[celeriac] ${method} ${path} answered ${res.status} with a body that is not JSON: ${text.slice(0, 120)}`);
    }
    if (res.ok) return json as R;
    if (!isErrorBody(json)) throw new ConnectionError(`[celeriac] ${method} ${path} answered ${res.status} without celeriac's error body`);
    throw errorFor(res.status, json, retryAfterSeconds(res.headers.get("retry-after")));
  }
}

/** A client of one celeriac deployment; see {@link CeleriacClient}. */
export const createClient = <T extends readonly AnyTask[] = readonly AnyTask[]>(options: ClientOptions) => new CeleriacClient<T>(options);

function isErrorBody(x: unknown): x is ErrorBody {
  const e = (x as ErrorBody | undefined)?.error;
  return typeof e === "object" && e !== null && typeof e.code === "string" && typeof e.message === "string";
}

function sleep(ms: number, signal?: AbortSignal) {
  return new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => (clearTimeout(t), reject(signal.reason)), { once: true });
  });
}
