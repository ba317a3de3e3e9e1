import type { Settled } from "./reply.ts";

/** Where commands run: a real Redis or the embedded in-memory one. Commands arrive lower-cased. */
export interface Backend {
  readonly kind: "redis" | "memory";
  /** Runs the commands in order, not atomically; one settled entry per command. */
  pipeline(cmds: readonly string[][]): Promise<Settled[]>;
  /**
   * Runs the commands as MULTI/EXEC: per-command errors for commands that fail while running,
   * a thrown ReplyError (EXECABORT…) when the transaction is discarded.
   */
  transaction(cmds: readonly string[][]): Promise<Settled[]>;
  close(): Promise<void>;
}
