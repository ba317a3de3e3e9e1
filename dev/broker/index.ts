/**
 * celeriac's local QStash v2-compatible broker (Node-only dev code).
 *
 *   node dev/broker/index.ts        # env: PORT, HOST, QSTASH_DATA_DIR, QSTASH_TIME_SCALE
 *
 * Uses the same fixed dev credentials as `npx @upstash/qstash-cli dev`, so either can be used.
 */
import type { AddressInfo } from "node:net";
import { pathToFileURL } from "node:url";
import type { Core } from "./core.ts";
import { Dispatcher } from "./delivery.ts";
import { Scheduler } from "./schedules.ts";
import { createServer } from "./server.ts";
import { Store } from "./store.ts";

export const DEV_TOKEN = "eyJVc2VySUQiOiJkZWZhdWx0VXNlciIsIlBhc3N3b3JkIjoiZGVmYXVsdFBhc3N3b3JkIn0=";
export const DEV_CURRENT_SIGNING_KEY = "sig_7kYjw48mhY7kAjqNGcy6cr29RJ6r";
export const DEV_NEXT_SIGNING_KEY = "sig_5ZB6DVzB1wjE8S6rZ7eenA8Pdnhs";

export interface BrokerOptions {
  /** @default 8080 ; 0 picks a free port */ port?: number;
  /** @default "127.0.0.1" */ host?: string;
  /**
   * Multiplies every wait (delays, not-before distance, backoff, Retry-After, flow-control rate
   * periods, and cron spacing when below 1). 0.001 makes a 10 s delay take 10 ms. Per-attempt
   * timeouts stay real time. @default 1
   */
  timeScale?: number;
  /** Directory where state (messages not yet delivered, schedules, queues, DLQ) is persisted so a restart loses nothing; undefined = memory only. */
  dataDir?: string;
  /** Dedup window in ms. @default 10 minutes */
  dedupWindowMs?: number;
  /** Log one line per delivery attempt. @default true when run directly, false when imported */
  log?: boolean | ((line: string) => void);
}

export interface Broker {
  url: string;
  token: string;
  currentSigningKey: string;
  nextSigningKey: string;
  close(): Promise<void>;
}

export async function startBroker(opts: BrokerOptions = {}): Promise<Broker> {
  const timeScale = opts.timeScale ?? 1;
  if (!(timeScale >= 0) || !Number.isFinite(timeScale)) throw new Error(`[celeriac] invalid timeScale ${timeScale}`);
  const log = typeof opts.log === "function" ? opts.log : opts.log ? (line: string) => console.log(`[celeriac:broker] ${line}`) : () => {};
  const store = new Store(opts.dataDir);
  const restored = store.load();
  const dispatcher = new Dispatcher({ store, timeScale, signingKey: () => DEV_CURRENT_SIGNING_KEY, log });
  const scheduler = new Scheduler(store, dispatcher, timeScale);
  const core: Core = {
    store,
    dispatcher,
    scheduler,
    token: DEV_TOKEN,
    keys: { current: DEV_CURRENT_SIGNING_KEY, next: DEV_NEXT_SIGNING_KEY },
    dedupWindowMs: opts.dedupWindowMs ?? 10 * 60_000,
    timeScale,
  };
  const server = createServer(core);
  const host = opts.host ?? "127.0.0.1";
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 8080, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  if (restored) {
    dispatcher.resume();
    scheduler.resume();
  }
  const { port } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host.includes(":") ? `[${host}]` : host}:${port}`,
    token: DEV_TOKEN,
    currentSigningKey: DEV_CURRENT_SIGNING_KEY,
    nextSigningKey: DEV_NEXT_SIGNING_KEY,
    close() {
      closing ??= (async () => {
        scheduler.close();
        dispatcher.close();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        await store.flush();
      })();
      return closing;
    },
  };
}

async function main(): Promise<void> {
  const env = process.env;
  const broker = await startBroker({
    port: env.PORT ? Number(env.PORT) : 8080,
    host: env.HOST ?? "127.0.0.1",
    ...(env.QSTASH_DATA_DIR ? { dataDir: env.QSTASH_DATA_DIR } : {}),
    timeScale: env.QSTASH_TIME_SCALE ? Number(env.QSTASH_TIME_SCALE) : 1,
    log: true,
  });
  console.log(
    [
      `[celeriac:broker] QStash-compatible broker listening on ${broker.url}`,
      `  QSTASH_URL=${broker.url}`,
      `  QSTASH_TOKEN=${broker.token}`,
      `  QSTASH_CURRENT_SIGNING_KEY=${broker.currentSigningKey}`,
      `  QSTASH_NEXT_SIGNING_KEY=${broker.nextSigningKey}`,
      env.QSTASH_DATA_DIR ? `  state persisted in ${env.QSTASH_DATA_DIR}` : `  state in memory only (set QSTASH_DATA_DIR to persist)`,
    ].join("\n"),
  );
  const stop = (signal: string) => {
    console.log(`[celeriac:broker] ${signal}: stopping`);
    broker.close().then(
      () => process.exit(0),
      (e: unknown) => {
        console.error(`[celeriac:broker] close failed: ${String(e)}`);
        process.exit(1);
      },
    );
  };
  process.once("SIGINT", () => stop("SIGINT"));
  process.once("SIGTERM", () => stop("SIGTERM"));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e: unknown) => {
    console.error(`[celeriac:broker] failed to start: ${String(e)}`);
    process.exit(1);
  });
}
