#!/usr/bin/env node
// `npx celeriac …`: celeriac's API from a shell, on the typed client. Run `celeriac --help`.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import {
  CeleriacError,
  ConnectionError,
  createClient,
  type EnqueueOptions,
  type TaskRecord,
  UnavailableError,
  WaitTimeoutError,
} from "../src/client.ts";
import { toSeconds } from "../src/durations.ts";
import * as fmt from "./format.ts";

const USAGE = `usage: celeriac <command> [options]

  enqueue <task> [payload]   enqueue a task; payload is JSON, @file.json or - (stdin); default {}
        --delay 90s  --not-before <iso|unix>  --retries N  --attempt-timeout 30s
        --idempotency-key K  --wait (wait for it to end, as wait does; --timeout applies)
  get <id>                   a task's state, attempts, result or error
  wait <id>                  wait until it ends, printing progress  [--timeout 60s] [--interval 1s]
  list                       recent tasks  [--state S] [--task T] [--limit N] [--cursor C]
  cancel <id>                cancel a task that has not started
  retry <id>                 run a failed or cancelled task again
  schedules list|sync        declared schedules vs QStash's; make QStash match the code
  dead list                  failed tasks QStash gave up on  [--task T] [--limit N] [--cursor C]
  dead replay <id>|--all     run one again, or every one (--task T narrows; --dry-run counts)

options:
  --url URL        celeriac's origin (env CELERIAC_URL)
  --api-key KEY    an API key (env CELERIAC_API_KEY)
  --json           print the API's JSON
  -h, --help

exit codes: 0 done; 1 the task failed or was cancelled; 2 bad usage; 3 refused by celeriac (4xx);
            4 celeriac unreachable or unavailable; 5 wait timed out`;

/** A mistake in how the CLI was called: exit code 2. */
class UsageError extends Error {}

const EXIT = { failed: 1, usage: 2, refused: 3, unavailable: 4, timeout: 5 } as const;

async function main(argv: string[]): Promise<number> {
  const { values: o, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      url: { type: "string" },
      "api-key": { type: "string" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
      wait: { type: "boolean", default: false },
      delay: { type: "string" },
      "not-before": { type: "string" },
      retries: { type: "string" },
      timeout: { type: "string" },
      "attempt-timeout": { type: "string" },
      interval: { type: "string" },
      "idempotency-key": { type: "string" },
      state: { type: "string" },
      task: { type: "string" },
      limit: { type: "string" },
      cursor: { type: "string" },
      all: { type: "boolean", default: false },
      "dry-run": { type: "boolean", default: false },
    },
  });
  const [command, ...args] = positionals;
  if (o.help || !command) {
    console.log(USAGE);
    return o.help ? 0 : EXIT.usage;
  }
  const url = o.url ?? process.env.CELERIAC_URL;
  if (!url) throw new UsageError("no celeriac URL: pass --url or set CELERIAC_URL");
  const client = createClient({ url, apiKey: o["api-key"] ?? process.env.CELERIAC_API_KEY ?? "" });
  const out = (human: string, json: unknown) => console.log(o.json ? JSON.stringify(json, null, 2) : human);
  const arg = (name: string) => args[0] ?? fail(`${command} needs <${name}>`);
  const ms = (flag: string, fallback: number) => {
    const raw = o[flag as "timeout"];
    if (raw === undefined) return fallback;
    const s = toSeconds(raw);
    if (s === undefined) throw new UsageError(`--${flag} must be seconds or a duration such as 90s or 1m30s`);
    return s * 1000;
  };
  const wait = async (id: string) => {
    const done = await client.wait(id, {
      timeout: ms("timeout", 60_000),
      interval: ms("interval", 1_000),
      onProgress: progressLine(o.json),
    });
    out(fmt.record(done), done);
    return done.state === "succeeded" ? 0 : EXIT.failed;
  };

  switch (command) {
    case "enqueue": {
      const task = arg("task");
      const options: EnqueueOptions = {
        ...(o.delay !== undefined ? { delay: o.delay } : {}),
        ...(o["not-before"] !== undefined ? { notBefore: /^\d+$/.test(o["not-before"]) ? Number(o["not-before"]) : o["not-before"] } : {}),
        ...(o.retries !== undefined ? { retries: integer("--retries", o.retries) } : {}),
        ...(o["attempt-timeout"] !== undefined ? { timeout: o["attempt-timeout"] } : {}),
        ...(o["idempotency-key"] !== undefined ? { idempotencyKey: o["idempotency-key"] } : {}),
      };
      const e = await client.enqueue(task, payloadOf(args[1]), options);
      if (!o.wait) return (out(fmt.enqueued(e), e), 0);
      if (!o.json) console.error(fmt.enqueued(e));
      return wait(e.id);
    }
    case "get": {
      const r = await client.get(arg("id"));
      return (out(fmt.record(r), r), 0);
    }
    case "wait":
      return wait(arg("id"));
    case "list": {
      const page = await client.list({
        ...(o.state ? { state: o.state as TaskRecord["state"] } : {}),
        ...(o.task ? { task: o.task } : {}),
        ...(o.limit ? { limit: integer("--limit", o.limit) } : {}),
        ...(o.cursor ? { cursor: o.cursor } : {}),
      });
      return (out(fmt.list(page.tasks, page.cursor), page), 0);
    }
    case "cancel": {
      const r = await client.cancel(arg("id"));
      return (out(fmt.record(r), r), 0);
    }
    case "retry": {
      const r = await client.retry(arg("id"));
      return (out(fmt.record(r), r), 0);
    }
    case "schedules": {
      if (args[0] === "list") {
        const s = await client.schedules.list();
        return (out(fmt.schedules(s), s), 0);
      }
      if (args[0] === "sync") {
        const r = await client.schedules.sync();
        return (out(fmt.sync(r), r), 0);
      }
      throw new UsageError("schedules needs list or sync");
    }
    case "dead": {
      if (args[0] === "list") {
        const page = await client.dead.list({
          ...(o.task ? { task: o.task } : {}),
          ...(o.limit ? { limit: integer("--limit", o.limit) } : {}),
          ...(o.cursor ? { cursor: o.cursor } : {}),
        });
        return (out(fmt.list(page.tasks, page.cursor), page), 0);
      }
      if (args[0] === "replay" && args[1]) {
        const r = await client.dead.replay(args[1]);
        return (out(fmt.record(r), r), 0);
      }
      if (args[0] === "replay" && o.all) {
        const r = await client.dead.replayMatching(o.task ? { task: o.task } : {}, o["dry-run"]);
        return (
          out(`${o["dry-run"] ? "would replay" : "replayed"} ${r.replayed ?? r.matched} of ${r.matched}: ${r.ids.join(", ") || "-"}`, r), 0
        );
      }
      throw new UsageError("dead needs list, replay <id> or replay --all");
    }
    default:
      throw new UsageError(`unknown command "${command}" (see celeriac --help)`);
  }
}

/** `wait`'s progress: one line rewritten in place on a terminal, a line per change otherwise. */
function progressLine(quiet: boolean) {
  let last = "";
  return (r: TaskRecord) => {
    const line = fmt.progress(r);
    if (quiet || line === last) return;
    last = line;
    if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${line}${["succeeded", "failed", "cancelled"].includes(r.state) ? "\n" : ""}`);
    else process.stderr.write(`${line}\n`);
  };
}

function payloadOf(raw: string | undefined): unknown {
  if (raw === undefined) return {};
  const text = raw === "-" ? readFileSync(0, "utf8") : raw.startsWith("@") ? readFileSync(raw.slice(1), "utf8") : raw;
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UsageError(`the payload is not JSON: ${(err as Error).message}`);
  }
}

function integer(flag: string, raw: string): number {
  if (!/^\d+$/.test(raw)) throw new UsageError(`${flag} must be a whole number`);
  return Number(raw);
}

function fail(message: string): never {
  throw new UsageError(message);
}

/** Each failure as one line on stderr, and its exit code. */
function report(err: unknown): number {
  const line = (s: string) => console.error(`celeriac: ${s}`);
  if (err instanceof UsageError || (err instanceof TypeError && "code" in err && String(err.code).startsWith("ERR_PARSE_ARGS"))) {
    line(err.message);
    return EXIT.usage;
  }
  if (err instanceof CeleriacError) {
    const issues = err.issues.map((i) => `${i.path}: ${i.message}`).join("; ");
    line(`${err.status} ${err.code}: ${err.body.error.message}${issues && !err.body.error.message.includes(issues) ? ` (${issues})` : ""}`);
    return err instanceof UnavailableError ? EXIT.unavailable : EXIT.refused;
  }
  if (err instanceof ConnectionError) {
    line(err.message.replace(/^\[celeriac\] /, ""));
    return EXIT.unavailable;
  }
  if (err instanceof WaitTimeoutError) {
    line(err.message.replace(/^\[celeriac\] /, ""));
    return EXIT.timeout;
  }
  if (err instanceof Error && "code" in err && err.code === "ENOENT") {
    line(err.message);
    return EXIT.usage;
  }
  line(`unexpected error: ${err instanceof Error ? err.message : String(err)}`);
  return 70;
}

process.exitCode = await main(process.argv.slice(2)).catch(report);
