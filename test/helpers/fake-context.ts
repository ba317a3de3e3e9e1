// A TaskContext with nothing behind it, for unit tests of a task's run(): mail, fetch and enqueue
// are recorded (and answered by the test's own functions), kv is a Map, stats a given report,
// codes a fixed code.
import type { CreateEmailOptions } from "resend";
import { buildReport } from "../../src/stats.ts";
import type { DayReport, EnqueueOptions, Logger, TaskContext } from "../../src/task.ts";

export interface FakeContext<Env> extends TaskContext<Env> {
  /** What the task did, in order. */
  sent: CreateEmailOptions[];
  fetched: Request[];
  enqueued: { task: string; payload: unknown; options: EnqueueOptions | undefined }[];
  kvEntries: Map<string, { value: unknown; ttl: number | undefined }>;
  logged: { level: string; message: string }[];
}

export function fakeContext<Env = Record<never, never>>(
  over: {
    env?: Env;
    id?: string;
    attempt?: number;
    fetch?: (req: Request) => Response | Promise<Response>;
    day?: (date: string) => DayReport;
    /** What ctx.codes.issue answers: a code, or null as within the cooldown. @default "123456" */
    code?: string | null;
  } = {},
): FakeContext<Env> {
  const sent: CreateEmailOptions[] = [];
  const fetched: Request[] = [];
  const enqueued: FakeContext<Env>["enqueued"] = [];
  const kvEntries: FakeContext<Env>["kvEntries"] = new Map();
  const logged: FakeContext<Env>["logged"] = [];
  const log = (level: string) => (message: string) => void logged.push({ level, message });
  const controller = new AbortController();
  return {
    id: over.id ?? "tsk_0000000000fakefakefakefake",
    attempt: over.attempt ?? 1,
    messageId: "msg_fake",
    signal: controller.signal,
    log: { info: log("info"), warn: log("warn"), error: log("error") } satisfies Logger,
    env: (over.env ?? {}) as Env,
    mail: async (email) => (sent.push(email), { id: `email-${sent.length}` }),
    fetch: (async (input: RequestInfo | URL, init?: RequestInit) => {
      const req = new Request(input, init);
      fetched.push(req);
      if (!over.fetch) throw new Error("fakeContext: no fetch answer given");
      return over.fetch(req);
    }) as typeof fetch,
    enqueue: async (task, payload, options) => {
      enqueued.push({ task: task.name, payload, options });
      return { id: `tsk_follow_up_${enqueued.length}`, state: "queued", runAt: new Date().toISOString() };
    },
    kv: {
      get: async <T>(key: string) => kvEntries.get(key)?.value as T | undefined,
      set: async (key, value, options) => void kvEntries.set(key, { value: JSON.parse(JSON.stringify(value)), ttl: options?.ttl }),
      delete: async (key) => void kvEntries.delete(key),
    },
    codes: { issue: async () => ({ code: over.code === undefined ? "123456" : over.code, expiresAt: Date.now() + 600_000 }) },
    stats: { day: async (date) => (over.day ? over.day(date) : buildReport(date, {})) },
    sent,
    fetched,
    enqueued,
    kvEntries,
    logged,
  };
}
