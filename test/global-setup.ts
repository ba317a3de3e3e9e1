// Starts the local stack once for the whole run: the Upstash-REST bridge (over the real Redis
// when one answers), the mail sink, the QStash-compatible broker and the Worker in workerd.
// The run keeps its data under a key prefix of its own, in whatever database REDIS_URL names, so
// a dev stack on the same Redis never sees the tests' tasks or counters, and several runs at
// once never meet; the prefix is deleted when the run ends.
import { randomBytes } from "node:crypto";
import { Redis as IORedis } from "ioredis";
import type { TestProject } from "vitest/node";
import { deleteKeys } from "../dev/redis-keys.ts";
import { type Stack, startStack } from "../dev/stack.ts";

/** Broker time scale for tests: QStash's 12 s first backoff takes 0.6 s. */
export const TIME_SCALE = 0.05;

/** This run's Redis key prefix (CELERIAC_REDIS_PREFIX of the app under test). */
const PREFIX = `celeriac-test-${process.pid}-${randomBytes(4).toString("hex")}:`;

let stack: Stack | undefined;

const redisUrl = () => process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

/** Keys of earlier runs that were killed before their teardown: their pid no longer runs. */
async function sweepDeadRuns(redis: IORedis): Promise<number> {
  const dead = new Set<string>();
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", "celeriac-test-*", "COUNT", 2000);
    cursor = next;
    for (const key of keys) {
      const m = /^(celeriac-test-(\d+)-[0-9a-f]+:)/.exec(key);
      if (m && !running(Number(m[2]))) dead.add(m[1]!);
    }
  } while (cursor !== "0");
  let removed = 0;
  for (const prefix of dead) removed += await deleteKeys(redis, `${prefix}*`);
  return removed;
}

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM"; // alive, another user's
  }
}

async function withRedis<T>(use: (redis: IORedis) => Promise<T>): Promise<T> {
  const redis = new IORedis(redisUrl(), { maxRetriesPerRequest: 2 });
  try {
    return await use(redis);
  } finally {
    redis.disconnect();
  }
}

export async function setup(project: TestProject) {
  stack = await startStack({
    ports: { bridge: 0, sink: 0, broker: 0, worker: 0, turnstile: 0, site: 0 },
    timeScale: TIME_SCALE,
    vars: {
      CELERIAC_REDIS_PREFIX: PREFIX,
      // The webhook tests' receiver listens on loopback; only this exact host is let through.
      CELERIAC_WEBHOOK_ALLOW_HOSTS: "127.0.0.1",
    },
    // Resend's default limit (5 requests/s per key), on the broker's scaled clock.
    sink: { rateWindowMs: 1000 * TIME_SCALE },
  });
  if (stack.bridge.backend === "redis") {
    const swept = await withRedis(sweepDeadRuns);
    if (swept) console.log(`[celeriac] removed ${swept} Redis keys left by test runs that were killed`);
  }
  console.log(
    `[celeriac] test stack: Redis bridge ${stack.bridge.url} (${stack.bridge.backend === "redis" ? `over the real Redis, keys under ${PREFIX}` : "embedded in-memory Redis"}), ` +
      `mail sink ${stack.sink.url}, broker ${stack.broker.url}, Worker (workerd) ${stack.worker.url}`,
  );
  project.provide("stack", {
    env: stack.env,
    worker: stack.worker.url,
    sink: stack.sink.url,
    broker: stack.broker.url,
    site: stack.site.url,
    turnstile: stack.turnstile.url,
    redisBackend: stack.bridge.backend,
    timeScale: TIME_SCALE,
  });
}

export async function teardown() {
  const backend = stack?.bridge.backend;
  await stack?.close();
  if (backend !== "redis") return;
  const removed = await withRedis((redis) => deleteKeys(redis, `${PREFIX}*`));
  console.log(`[celeriac] test stack closed; removed ${removed} Redis keys under ${PREFIX}`);
}

declare module "vitest" {
  export interface ProvidedContext {
    stack: {
      env: Record<string, string>;
      worker: string;
      sink: string;
      broker: string;
      /** examples/ on its own origin. */
      site: string;
      /** The Turnstile siteverify stand-in. */
      turnstile: string;
      redisBackend: "redis" | "memory";
      timeScale: number;
    };
  }
}
