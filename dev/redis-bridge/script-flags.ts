// Upstash accepts the `allow-key-locking` shebang flag that @upstash/ratelimit's scripts carry
// (`#!lua flags=allow-key-locking`); a Redis older than the flag refuses such a script outright.
// The flag only lets the server lock keys instead of the whole keyspace, so over such a Redis the
// bridge drops it and keeps EVALSHA by the original script's SHA working, as Upstash would.
import { createHash } from "node:crypto";

const FLAG = "allow-key-locking";
const sha1 = (s: string) => createHash("sha1").update(s).digest("hex");

/** Rewrites commands for a Redis that does not know the flag; a no-op for one that does. */
export class ScriptFlags {
  /** The rewritten script's SHA, by the original's. */
  readonly #shas = new Map<string, string>();
  readonly supported: boolean;
  constructor(supported: boolean) {
    this.supported = supported;
  }

  #strip(script: string): string {
    const m = /^#!lua[^\n]*/.exec(script);
    if (!m?.[0].includes(FLAG)) return script;
    const line = m[0]
      .replace(
        /(flags=)([^\s]*)/,
        (_, k: string, list: string) =>
          k +
          list
            .split(",")
            .filter((f) => f !== FLAG)
            .join(","),
      )
      .replace(/\s+flags=(?=\s|$)/, "");
    const out = line + script.slice(m[0].length);
    this.#shas.set(sha1(script), sha1(out));
    return out;
  }

  adapt(cmd: readonly string[]): readonly string[] {
    if (this.supported) return cmd;
    const name = (cmd[0] ?? "").toLowerCase();
    if ((name === "eval" || name === "eval_ro") && cmd[1] !== undefined) return [cmd[0]!, this.#strip(cmd[1]), ...cmd.slice(2)];
    if (name === "script" && (cmd[1] ?? "").toLowerCase() === "load" && cmd[2] !== undefined)
      return [cmd[0]!, cmd[1]!, this.#strip(cmd[2])];
    if ((name === "evalsha" || name === "evalsha_ro") && cmd[1] !== undefined) {
      const sha = this.#shas.get(cmd[1].toLowerCase());
      if (sha) return [cmd[0]!, sha, ...cmd.slice(2)];
    }
    return cmd;
  }
}
