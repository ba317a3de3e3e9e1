// The embedded backend: ioredis-mock, with the checks it lacks (arity, WRONGTYPE, integer and
// float arguments, option case) and its reply shapes brought back to RESP2. Every mock command
// runs synchronously when called (only its result is a promise), so commands issued in one tick
// cannot interleave with other requests: that is what makes MULTI/EXEC and EVAL atomic here.
import { createHash, randomUUID } from "node:crypto";
import RedisMock from "ioredis-mock";
import type { Backend } from "./backend.ts";
import { arityError, COMMANDS, unknownCommand } from "./commands.ts";
import { composeScript, registerHooks } from "./lua.ts";
import { normalizeOptions, rewrite, runtimeCheck } from "./memory-checks.ts";
import { parseHexResp, type Reply, ReplyError, type Settled, Status, toResp } from "./reply.ts";

interface Mock {
  data: { get(key: string): unknown; has(key: string): boolean };
  expires: { get(key: string): number | undefined; has(key: string): boolean };
  eval(script: string, numKeys: string, ...args: string[]): Promise<unknown>;
  disconnect(): void;
}
type MockFn = (...args: string[]) => Promise<unknown>;

const BRIDGE_HANDLED = new Set(["eval", "evalsha", "eval_ro", "evalsha_ro", "script"]);
const STATUS_REPLIES = new Set([
  "set",
  "setex",
  "psetex",
  "mset",
  "hmset",
  "rename",
  "ltrim",
  "lset",
  "flushdb",
  "flushall",
  "type",
  "ping",
  "restore",
  "pfmerge",
  "save",
  "bgsave",
  "debug",
]);
const BULK_NUMBERS = new Set(["zscore", "zincrby", "incrbyfloat", "hincrbyfloat", "zmscore", "geodist", "zpopmin", "zpopmax"]);

const sha1 = (s: string) => createHash("sha1").update(s).digest("hex");

function errorText(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  const bare = msg.replace(/^(Type)?Error: /, "");
  if (/does not contain a|is not a function|Cannot read prop/.test(bare)) {
    return "WRONGTYPE Operation against a key holding the wrong kind of value";
  }
  return /^[A-Z]+ /.test(bare) ? bare : `ERR ${bare}`;
}

/** The mock's JS value for a command's result, in RESP2 shape. */
function normalize(name: string, value: unknown): Reply {
  if (value === undefined || value === null) return null;
  if (typeof value === "boolean") return value ? 1 : 0;
  if (typeof value === "number") return BULK_NUMBERS.has(name) ? String(value) : value;
  if (typeof value === "string") return STATUS_REPLIES.has(name) && value !== "" ? new Status(value) : value;
  if (value instanceof Uint8Array) return value;
  if (Array.isArray(value)) return value.map((v) => normalize(BULK_NUMBERS.has(name) ? name : "", v));
  if (value instanceof Error) return new ReplyError(errorText(value));
  if (typeof value === "object") return Object.entries(value).flatMap(([k, v]) => [k, normalize("", v)]);
  return String(value);
}

export function createMemoryBackend(): Backend {
  const id = randomUUID();
  // ioredis-mock shares data between instances with the same host:port; a unique host keeps
  // every bridge its own Redis.
  const mock = new RedisMock({ host: `celeriac-bridge-${id}`, lazyConnect: false }) as unknown as Mock;
  const fn = (name: string) => (mock as unknown as Record<string, unknown>)[name] as MockFn | undefined;
  const scripts = new Map<string, string>();
  // The mock stubs commands it lacks with a function that throws "Unsupported command".
  const supported = new Map<string, boolean>();
  const mockHas = (name: string) => {
    let has = supported.get(name);
    if (has === undefined) {
      const f = fn(name);
      supported.set(name, (has = typeof f === "function" && !String(f).includes("Unsupported command")));
    }
    return has;
  };

  /** Errors Redis reports when a command is queued (unknown command, arity). */
  function queueCheck(cmd: readonly string[]): string | null {
    const name = cmd[0] ?? "";
    const args = cmd.slice(1);
    const spec = COMMANDS.get(name);
    if (!spec) return unknownCommand(name, args);
    const arity = arityError(name, spec, args);
    if (arity) return arity;
    if (!BRIDGE_HANDLED.has(name) && !mockHas(name)) {
      return `ERR unknown command '${name}': not supported by the embedded in-memory Redis (run a real Redis)`;
    }
    return null;
  }

  /** What running `cmd` now amounts to: an error, a reply computed here, or a mock command. */
  function plan(cmd: readonly string[]): { error: string } | { reply: Reply } | { name: string; args: string[] } {
    const queued = queueCheck(cmd);
    if (queued) return { error: queued };
    const name = cmd[0] ?? "";
    const args = normalizeOptions(name, cmd.slice(1));
    const bad = runtimeCheck(mock.data, name, args);
    return bad ? { error: bad } : rewrite(mock.data, mock.expires, name, args);
  }

  /** Starts a command now (synchronously); the promise only carries its outcome. */
  function run(cmd: readonly string[]): Promise<Reply> {
    const todo = plan(cmd);
    if ("error" in todo) return Promise.reject(new ReplyError(todo.error));
    if ("reply" in todo) return Promise.resolve(todo.reply);
    if (BRIDGE_HANDLED.has(todo.name)) return script(todo.name, todo.args);
    try {
      return (fn(todo.name) as MockFn).apply(mock, todo.args).then(
        (v) => normalize(todo.name, v),
        (e: unknown) => Promise.reject(new ReplyError(errorText(e))),
      );
    } catch (e) {
      return Promise.reject(new ReplyError(errorText(e)));
    }
  }

  function script(name: string, args: string[]): Promise<Reply> {
    if (name === "script") {
      const sub = (args[0] ?? "").toLowerCase();
      if (sub === "load" && args.length === 2) {
        const src = args[1] ?? "";
        scripts.set(sha1(src), src);
        return Promise.resolve(sha1(src));
      }
      if (sub === "exists") return Promise.resolve(args.slice(1).map((s) => (scripts.has(s.toLowerCase()) ? 1 : 0)));
      if (sub === "flush") {
        scripts.clear();
        return Promise.resolve(new Status("OK"));
      }
      return Promise.reject(new ReplyError(`ERR unknown subcommand or wrong number of arguments for '${args[0] ?? ""}'. Try SCRIPT HELP.`));
    }
    let src = args[0] ?? "";
    if (name.startsWith("evalsha")) {
      const found = scripts.get(src.toLowerCase());
      if (found === undefined) return Promise.reject(new ReplyError("NOSCRIPT No matching script. Please use EVAL."));
      src = found;
    }
    const numKeys = args[1] ?? "";
    if (!/^-?\d+$/.test(numKeys)) return Promise.reject(new ReplyError("ERR value is not an integer or out of range"));
    if (Number(numKeys) < 0) return Promise.reject(new ReplyError("ERR Number of keys can't be negative"));
    if (Number(numKeys) > args.length - 2) {
      return Promise.reject(new ReplyError("ERR Number of keys can't be greater than number of args"));
    }
    const sha = sha1(src);
    scripts.set(sha, src);
    return mock.eval(composeScript(id, sha, src), numKeys, ...args.slice(2)).then((out) => {
      const reply = parseHexResp(String(out));
      if (reply instanceof ReplyError) throw reply;
      return reply;
    });
  }

  const unregister = registerHooks(id, {
    prepare(...cmd) {
      const c = cmd.map(String);
      c[0] = (c[0] ?? "").toLowerCase();
      const name = c[0];
      let todo = plan(c);
      if ("error" in todo && todo.error.startsWith("ERR unknown command")) {
        todo = { error: "ERR Unknown Redis command called from script" };
      } else if (COMMANDS.get(name)?.noScript || BRIDGE_HANDLED.has(name)) {
        todo = { error: "ERR This Redis command is not allowed from script" };
      }
      if ("error" in todo) return `R${toResp(new ReplyError(todo.error))}`;
      if ("reply" in todo) return `R${toResp(todo.reply)}`;
      return `C${toResp([todo.name, ...todo.args])}`;
    },
    reply(name, raw) {
      if (Array.isArray(raw) && raw[0] === "error" && typeof raw[1] === "string") {
        return toResp(new ReplyError(errorText(raw[1])));
      }
      // The mock prefixes array results with a placeholder so Lua indexes them from 1.
      return toResp(normalize(name, Array.isArray(raw) ? raw.slice(1) : raw));
    },
    jsonToLua: jsonToLua,
    sha1hex: (s) => sha1(s),
  });

  return {
    kind: "memory",
    async pipeline(cmds) {
      const started = cmds.map((c) => run(c));
      return settleAll(started);
    },
    async transaction(cmds) {
      if (cmds.some((c) => queueCheck(c) !== null)) {
        throw new ReplyError("EXECABORT Transaction discarded because of previous errors.");
      }
      return settleAll(cmds.map((c) => run(c)));
    },
    async close() {
      unregister();
      mock.disconnect();
    },
  };
}

async function settleAll(started: Promise<Reply>[]): Promise<Settled[]> {
  const results = await Promise.allSettled(started);
  return results.map((r) => (r.status === "fulfilled" ? { ok: true, value: r.value } : { ok: false, error: errorText(r.reason) }));
}

function jsonToLua(json: string): string | null {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return null;
  }
  const lit = (v: unknown): string => {
    if (v === null) return "N";
    if (typeof v === "string") return JSON.stringify(v).replace(/\\u([0-9a-f]{4})/gi, "\\u{$1}");
    if (typeof v === "number" || typeof v === "boolean") return String(v);
    if (Array.isArray(v)) return `{${v.map(lit).join(",")}}`;
    return `{${Object.entries(v as object)
      .map(([k, x]) => `[${lit(k)}]=${lit(x)}`)
      .join(",")}}`;
  };
  return lit(value);
}
