// Local stand-in for Upstash Redis's REST API, so @upstash/redis works offline: over a real Redis
// when one answers, else over an embedded in-memory one. Node-only dev code, never bundled.
//   node dev/redis-bridge.ts        (env: PORT, REDIS_URL, UPSTASH_REDIS_REST_TOKEN)
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { pathToFileURL } from "node:url";
import type { Backend } from "./redis-bridge/backend.ts";
import { createHandler } from "./redis-bridge/http.ts";
import { createMemoryBackend } from "./redis-bridge/memory.ts";
import { connectRealRedis } from "./redis-bridge/real.ts";

export interface RedisBridgeOptions {
  /** TCP port; 0 picks a free one. @default 8079 */
  port?: number;
  /** @default "127.0.0.1" */
  host?: string;
  /** Real Redis to use. @default process.env.REDIS_URL ?? "redis://127.0.0.1:6379" */
  redisUrl?: string;
  /** Bearer token clients must send. @default "celeriac-dev-redis-token" */
  token?: string;
  /**
   * "auto" tries the real Redis (quick connect timeout, ~1s) and falls back to embedded
   * in-memory; "redis" requires it; "memory" forces the embedded one. @default "auto"
   */
  backend?: "auto" | "redis" | "memory";
}

export interface RedisBridge {
  url: string;
  token: string;
  backend: "redis" | "memory";
  close(): Promise<void>;
}

export const DEFAULT_REDIS_BRIDGE_TOKEN = "celeriac-dev-redis-token";

export async function startRedisBridge(opts: RedisBridgeOptions = {}): Promise<RedisBridge> {
  const { port = 8079, host = "127.0.0.1", token = DEFAULT_REDIS_BRIDGE_TOKEN, backend: mode = "auto" } = opts;
  const redisUrl = opts.redisUrl ?? process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

  let backend: Backend;
  if (mode === "memory") {
    backend = createMemoryBackend();
  } else {
    try {
      backend = await connectRealRedis(redisUrl);
    } catch (err) {
      if (mode === "redis") {
        throw new Error(`[celeriac] redis-bridge: no Redis answered at ${redisUrl}: ${(err as Error).message}`);
      }
      backend = createMemoryBackend();
    }
  }

  const handler = createHandler(backend, token);
  const server = createServer((req, res) => void handler(req, res));
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => resolve());
    });
  } catch (err) {
    await backend.close();
    throw new Error(`[celeriac] redis-bridge: cannot listen on ${host}:${port}: ${(err as Error).message}`);
  }
  const bound = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host.includes(":") ? `[${host}]` : host}:${bound}`,
    token,
    backend: backend.kind,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }).then(() => backend.close());
      return closing;
    },
  };
}

const isMain =
  (import.meta as { main?: boolean }).main ?? (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href);

if (isMain) {
  const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
  const bridge = await startRedisBridge({
    port: process.env.PORT ? Number(process.env.PORT) : undefined,
    redisUrl,
    token: process.env.UPSTASH_REDIS_REST_TOKEN || undefined,
  }).catch((err: Error) => {
    console.error(err.message);
    process.exit(1);
  });
  const over =
    bridge.backend === "redis" ? `over real Redis at ${redisUrl}` : `embedded in-memory Redis (no Redis answered at ${redisUrl})`;
  console.log(`[celeriac] redis-bridge: ${bridge.url} (token ${bridge.token}), ${over}`);
  const stop = () => void bridge.close().then(() => process.exit(0));
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}
