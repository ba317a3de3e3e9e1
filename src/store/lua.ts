import type { Redis } from "@upstash/redis/cloudflare";
import { ApiError, unavailable } from "../errors.ts";

/** Runs Redis I/O; a failure to reach Redis (or a reply it cannot make sense of) becomes a 503. */
export async function redisIo<T>(io: () => Promise<T>): Promise<T> {
  try {
    return await io();
  } catch (err) {
    throw err instanceof ApiError ? err : unavailable("redis", err);
  }
}

/** One call of a Lua script: its keys and arguments. */
export interface LuaCall {
  keys: string[];
  args: (string | number)[];
}

/** A Lua script run by SHA, loaded once when Redis answers NOSCRIPT (after a restart or flush). */
export class Lua {
  readonly source: string;
  #sha: Promise<string> | undefined;
  constructor(source: string) {
    this.source = source;
  }

  sha(): Promise<string> {
    return (this.#sha ??= crypto.subtle
      .digest("SHA-1", new TextEncoder().encode(this.source))
      .then((d) => [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("")));
  }

  /** Runs the script once per call in a single pipeline: one round trip (two on NOSCRIPT). */
  run<T>(redis: Redis, calls: LuaCall[]): Promise<T[]> {
    return redisIo(() => this.#run<T>(redis, calls));
  }

  async #run<T>(redis: Redis, calls: LuaCall[]): Promise<T[]> {
    const sha = await this.sha();
    const once = () => {
      const p = redis.pipeline();
      for (const c of calls) p.evalsha(sha, c.keys, c.args.map(String));
      return p.exec<unknown[]>({ keepErrors: true }) as Promise<{ result: unknown; error?: string }[]>;
    };
    let replies = await once();
    if (replies.some((r) => r.error?.includes("NOSCRIPT"))) {
      await redis.scriptLoad(this.source);
      replies = await once();
    }
    return replies.map((r) => {
      if (r.error) throw new Error(`[celeriac] Redis script failed: ${r.error}`);
      return r.result as T;
    });
  }
}
