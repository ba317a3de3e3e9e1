import { Client, Receiver } from "@upstash/qstash";
import { Redis } from "@upstash/redis/cloudflare";
import { Resend } from "resend";
import type { Config } from "./env.ts";

/** The clients one configuration needs, created lazily and reused for the isolate's lifetime. */
export interface Services {
  redis: Redis;
  qstash: Client;
  receiver: Receiver;
  resend: Resend;
}

const cache = new WeakMap<Config, Services>();

export function servicesFor(config: Config): Services {
  let s = cache.get(config);
  if (s) return s;
  let redis: Redis | undefined;
  let qstash: Client | undefined;
  let receiver: Receiver | undefined;
  let resend: Resend | undefined;
  s = {
    get redis() {
      // No client-side retries: a Redis that does not answer must turn into a quick 503, not a
      // request that hangs for seconds of backoff.
      return (redis ??= new Redis({
        url: config.redis.url,
        token: config.redis.token,
        retry: false,
        enableTelemetry: false,
        // Round trips are explicit (pipelines, Lua), and values are parsed where they are read.
        enableAutoPipelining: false,
        automaticDeserialization: false,
      }));
    },
    get qstash() {
      return (qstash ??= new Client({ baseUrl: config.qstash.url, token: config.qstash.token, retry: false }));
    },
    get receiver() {
      return (receiver ??= new Receiver({
        currentSigningKey: config.qstash.currentSigningKey,
        nextSigningKey: config.qstash.nextSigningKey,
      }));
    },
    get resend() {
      return (resend ??= new Resend(config.resend.apiKey, config.resend.baseUrl ? { baseUrl: config.resend.baseUrl } : undefined));
    },
  };
  cache.set(config, s);
  return s;
}
