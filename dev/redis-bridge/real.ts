// The real-Redis backend: one ioredis connection, commands sent raw (no ioredis reply
// transformers, replies as Buffers) so what comes back is exactly what Redis said.
import { Command, Redis } from "ioredis";
import type { Backend } from "./backend.ts";
import { BackendError, type Reply, ReplyError, type Settled } from "./reply.ts";
import { ScriptFlags } from "./script-flags.ts";

// ioredis reshapes some replies (HGETALL into an object); the REST API must keep RESP2 shapes.
class RawCommand extends Command {
  override transformReply(result: Buffer | Buffer[]): Buffer | Buffer[] {
    return result;
  }
}

const raw = (cmd: readonly string[]) => new RawCommand(cmd[0] ?? "", cmd.slice(1), { replyEncoding: null });

function settle(err: unknown, value: unknown): Settled {
  if (err == null) return { ok: true, value: fromIoredis(value) };
  if (err instanceof Error && err.name === "ReplyError") return { ok: false, error: err.message };
  throw new BackendError(`[celeriac] redis-bridge: Redis connection failed: ${String((err as Error)?.message ?? err)}`);
}

function fromIoredis(value: unknown): Reply {
  if (Array.isArray(value)) return value.map(fromIoredis);
  if (value instanceof Error) return new ReplyError(value.message);
  if (value === undefined) return null;
  return value as Reply;
}

/**
 * Connects to the Redis at `url`, failing within about `timeoutMs` when none answers. Once
 * connected it reconnects on its own, as a long-running dev server should.
 */
export async function connectRealRedis(url: string, timeoutMs = 1000): Promise<Backend> {
  let probing = true;
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 2,
    retryStrategy: (times) => (probing ? null : Math.min(times * 200, 2000)),
  });
  let lastError = "";
  client.on("error", (err: Error) => {
    if (probing) lastError = err.message;
    if (probing || err.message === lastError) return;
    lastError = err.message;
    console.error(`[celeriac] redis-bridge: Redis at ${url}: ${err.message}`);
  });
  client.on("ready", () => (lastError = ""));
  try {
    await client.connect();
    await client.ping();
  } catch (err) {
    client.disconnect();
    throw new Error(lastError || (err as Error).message);
  }
  probing = false;
  lastError = "";
  const flagReply = await client.eval("#!lua flags=allow-key-locking\nreturn 1", 0).then(
    () => true,
    () => false,
  );
  const scripts = new ScriptFlags(flagReply);

  return {
    kind: "redis",
    async pipeline(cmds) {
      // Sent back to back on the one connection: in order, pipelined, not atomic.
      const sent = cmds.map((cmd) => {
        const c = raw(scripts.adapt(cmd));
        client.sendCommand(c);
        return c.promise;
      });
      const results = await Promise.allSettled(sent);
      return results.map((r) => (r.status === "fulfilled" ? settle(null, r.value) : settle(r.reason, null)));
    },
    async transaction(cmds) {
      // ioredis writes MULTI … EXEC in one go on the same connection, so nothing interleaves.
      const tx = client.multi();
      // Pipeline#sendCommand exists at run time but is missing from ioredis's ChainableCommander type.
      const queue = tx as unknown as { sendCommand(c: ReturnType<typeof raw>): void };
      for (const cmd of cmds) queue.sendCommand(raw(scripts.adapt(cmd)));
      let results: [Error | null, unknown][] | null;
      try {
        results = await tx.exec();
      } catch (err) {
        if (err instanceof Error && err.name === "ReplyError") throw new ReplyError(err.message);
        throw new BackendError(`[celeriac] redis-bridge: Redis connection failed: ${String(err)}`);
      }
      if (!results) throw new ReplyError("EXECABORT Transaction discarded because of previous errors.");
      return results.map(([err, value]) => settle(err, value));
    },
    async close() {
      await client.quit().catch(() => client.disconnect());
    },
  };
}
