import { Client } from "@upstash/qstash";
import { Redis } from "@upstash/redis/cloudflare";
import { Resend } from "resend";
import type { Config } from "./env.ts";
import { QStashVerifier } from "./signature.ts";

/** The clients one configuration needs, created lazily and reused for the isolate's lifetime. */
export interface Services {
  redis: Redis;
  qstash: Client;
  receiver: QStashVerifier;
  resend: Resend;
}

const cache = new WeakMap<Config, Services>();

/** The clients for a configuration; `injected` ones (tests, other runtimes) replace the env's. */
export function servicesFor(config: Config, injected: Partial<Services> = {}): Services {
  const shared = Object.keys(injected).length === 0;
  let s = shared ? cache.get(config) : undefined;
  if (s) return s;
  let redis: Redis | undefined;
  let qstash: Client | undefined;
  let receiver: QStashVerifier | undefined;
  let resend: Resend | undefined;
  s = {
    get redis() {
      // Round trips are explicit (pipelines, Lua), and values are parsed where they are read.
      return (redis ??= injected.redis ?? new Redis({ ...redisOptions(config), enableAutoPipelining: false }));
    },
    get qstash() {
      // devMode pinned off: otherwise a stray QSTASH_DEV in the process env (read by the SDK
      // itself) silently swaps the configured URL, token and keys for the SDK's dev server's.
      // celeriac's local stack is configured like production, through QSTASH_URL and the keys.
      return (qstash ??=
        injected.qstash ?? new Client({ baseUrl: config.qstash.url, token: config.qstash.token, retry: false, devMode: false }));
    },
    get receiver() {
      return (receiver ??= injected.receiver ?? new QStashVerifier(config.qstash.currentSigningKey, config.qstash.nextSigningKey));
    },
    get resend() {
      return (resend ??=
        injected.resend ?? new Resend(config.resend.apiKey, config.resend.baseUrl ? { baseUrl: config.resend.baseUrl } : undefined));
    },
  };
  if (shared) cache.set(config, s);
  return s;
}

/**
 * No client-side retries: a Redis that does not answer must turn into a quick 503, not a
 * request that hangs for seconds of backoff. Replies as plain JSON strings (no `Upstash-Encoding:
 * base64`): everything celeriac stores is text it wrote itself, and decoding every reply from
 * base64 costs CPU on each round trip.
 */
const redisOptions = (config: Config) => ({
  url: config.redis.url,
  token: config.redis.token,
  retry: false as const,
  enableTelemetry: false,
  automaticDeserialization: false,
  responseEncoding: false as const,
});
