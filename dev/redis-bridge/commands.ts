// What the bridge knows about Redis commands: which ones cannot work over stateless HTTP (rejected
// for both backends, as Upstash does) and, for the embedded backend, arity and key positions taken
// from a real Redis's COMMAND table (commands-data.ts).
import { COMMAND_TABLE } from "./commands-data.ts";

export interface CommandSpec {
  arity: number;
  firstKey: number;
  lastKey: number;
  keyStep: number;
  /** ACL data-type category ("string", "hash", "list", "set", "sortedset", …) or "-". */
  type: string;
  noScript: boolean;
  blocking: boolean;
}

export const COMMANDS: ReadonlyMap<string, CommandSpec> = new Map(
  COMMAND_TABLE.trim()
    .split("\n")
    .map((line) => {
      const [name = "", arity, first, last, step, type = "-", marks = ""] = line.split(" ");
      const spec: CommandSpec = {
        arity: Number(arity),
        firstKey: Number(first),
        lastKey: Number(last),
        keyStep: Number(step),
        type,
        noScript: marks.includes("n"),
        blocking: marks.includes("b"),
      };
      return [name, spec] as const;
    }),
);

// Commands that need a dedicated connection, change connection state or block it; a REST request
// has none of those. SUBSCRIBE and friends would need Upstash's SSE endpoints.
const CONNECTION_STATE = new Set([
  "multi",
  "exec",
  "discard",
  "watch",
  "unwatch",
  "select",
  "auth",
  "hello",
  "quit",
  "reset",
  "client",
  "monitor",
  "sync",
  "psync",
  "replconf",
  "shutdown",
  "failover",
  "replicaof",
  "slaveof",
  "cluster",
  "readonly",
  "readwrite",
  "asking",
  "wait",
  "waitaof",
  "subscribe",
  "psubscribe",
  "ssubscribe",
  "unsubscribe",
  "punsubscribe",
  "sunsubscribe",
]);

/** Why the bridge refuses a command outright, or null when it may be sent on. */
export function rejectReason(name: string, args: readonly string[]): string | null {
  const blocking =
    name === "xread" || name === "xreadgroup" ? args.some((a) => a.toLowerCase() === "block") : COMMANDS.get(name)?.blocking === true;
  if (blocking) {
    return `ERR Command is not available over REST: '${name}' blocks the connection (use the non-blocking form or poll)`;
  }
  if (CONNECTION_STATE.has(name)) {
    return `ERR Command is not available over REST: '${name}' needs a dedicated connection (use /multi-exec for transactions)`;
  }
  return null;
}

export function unknownCommand(name: string, args: readonly string[]): string {
  const shown = args
    .slice(0, 3)
    .map((a) => `'${a.slice(0, 128)}' `)
    .join("");
  return `ERR unknown command '${name}', with args beginning with: ${shown}`;
}

/** Arity check as Redis does it (`args` excludes the command name). */
export function arityError(name: string, spec: CommandSpec, args: readonly string[]): string | null {
  const n = args.length + 1;
  const ok = spec.arity >= 0 ? n === spec.arity : n >= -spec.arity;
  return ok ? null : `ERR wrong number of arguments for '${name}' command`;
}

/** Positions (into `args`) of the keys a command touches, per its COMMAND entry. */
export function keyPositions(spec: CommandSpec, args: readonly string[]): number[] {
  if (spec.firstKey <= 0 || spec.keyStep <= 0) return [];
  const last = spec.lastKey < 0 ? args.length + spec.lastKey : spec.lastKey - 1;
  const out: number[] = [];
  for (let i = spec.firstKey - 1; i <= last && i < args.length; i += spec.keyStep) out.push(i);
  return out;
}
