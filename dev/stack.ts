// The local stack: Upstash-REST bridge, mail sink, QStash-compatible broker and the Worker under
// `wrangler dev` (or the Node / Deno entry). `npm run dev` and the tests both start it from here.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { startBroker, type Broker } from "./broker/index.ts";
import { startMailSink, type MailSink } from "./mail-sink.ts";
import { startRedisBridge, type RedisBridge } from "./redis-bridge.ts";

export const ROOT = resolve(import.meta.dirname, "..");

/** The API key the local stack accepts. */
export const DEV_API_KEY = "celeriac-dev-key-change-me";

export interface StackOptions {
  /** Ports; 0 picks free ones. @default bridge 8079, sink 8025, broker 8080, worker 8787 */
  ports?: Partial<Record<"bridge" | "sink" | "broker" | "worker", number>>;
  /** Broker time scale (0.05: a 12 s backoff takes 0.6 s). @default 1 */
  timeScale?: number;
  /** Where the broker keeps its state across restarts; undefined keeps it in memory. */
  brokerDataDir?: string;
  /** @default "auto" (a real Redis when one answers, else embedded) */
  redis?: "auto" | "redis" | "memory";
  /** Which runtime serves the app. @default "workerd" */
  runtime?: Runtime;
  /** Forward the Worker's output to this process's. @default false */
  verbose?: boolean;
  /** Extra bindings for the app. */
  vars?: Record<string, string>;
}

export type Runtime = "workerd" | "node" | "deno";

export interface Stack {
  bridge: RedisBridge;
  sink: MailSink;
  broker: Broker;
  worker: AppProcess;
  /** The env the app runs with. */
  env: Record<string, string>;
  close(): Promise<void>;
}

export interface AppProcess {
  url: string;
  runtime: Runtime;
  close(): Promise<void>;
}

/** A free TCP port on loopback (there is a small race until it is bound again; fine locally). */
export function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => ok(typeof a === "object" && a ? a.port : 0));
    });
  });
}

/** The env for an app served at `url` against these stand-ins. */
export function stackEnv(parts: { bridge: RedisBridge; sink: MailSink; broker: Broker }, url: string, vars: Record<string, string> = {}) {
  return {
    CELERIAC_PUBLIC_URL: url,
    CELERIAC_API_KEYS: `dev:${DEV_API_KEY}`,
    CELERIAC_MAIL_FROM: "celeriac <tasks@celeriac.dev>",
    CELERIAC_WEBHOOK_SECRET: "whsec_Y2VsZXJpYWMtZGV2LXdlYmhvb2stc2VjcmV0",
    QSTASH_URL: parts.broker.url,
    QSTASH_TOKEN: parts.broker.token,
    QSTASH_CURRENT_SIGNING_KEY: parts.broker.currentSigningKey,
    QSTASH_NEXT_SIGNING_KEY: parts.broker.nextSigningKey,
    UPSTASH_REDIS_REST_URL: parts.bridge.url,
    UPSTASH_REDIS_REST_TOKEN: parts.bridge.token,
    RESEND_API_KEY: "re_celeriac_dev",
    RESEND_BASE_URL: parts.sink.url,
    ...vars,
  };
}

export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const p = opts.ports ?? {};
  const [bridge, sink, broker] = await Promise.all([
    startRedisBridge({ port: p.bridge ?? 8079, backend: opts.redis ?? "auto" }),
    startMailSink({ port: p.sink ?? 8025 }),
    startBroker({
      port: p.broker ?? 8080,
      timeScale: opts.timeScale ?? 1,
      ...(opts.brokerDataDir ? { dataDir: opts.brokerDataDir } : {}),
      log: opts.verbose ?? false,
    }),
  ]);
  const parts = { bridge, sink, broker };
  let worker: AppProcess;
  let env: Record<string, string>;
  try {
    const port = p.worker === undefined ? 8787 : p.worker === 0 ? await freePort() : p.worker;
    env = stackEnv(parts, `http://127.0.0.1:${port}`, opts.vars);
    worker = await startApp(opts.runtime ?? "workerd", port, env, opts.verbose ?? false);
  } catch (err) {
    await Promise.allSettled([bridge.close(), sink.close(), broker.close()]);
    throw err;
  }
  return {
    bridge,
    sink,
    broker,
    worker,
    env,
    async close() {
      await worker.close();
      await Promise.allSettled([broker.close(), sink.close(), bridge.close()]);
    },
  };
}

const COMMANDS: Record<Runtime, (port: number, envFile: string) => string[]> = {
  workerd: (port, envFile) => [
    join(ROOT, "node_modules/wrangler/bin/wrangler.js"),
    "dev",
    "--port", String(port),
    "--ip", "127.0.0.1",
    "--env-file", envFile,
    "--inspector-port", "0",
    "--show-interactive-dev-session=false",
    "--log-level", "warn",
  ],
  node: () => [join(ROOT, "src/node.ts")],
  deno: () => [join(ROOT, "node_modules/deno/bin.cjs"), "run", "--allow-net", "--allow-env", "--no-prompt", join(ROOT, "src/deno.ts")],
};

/** Starts the app in a child process and waits until `/healthz` answers 200. */
export async function startApp(runtime: Runtime, port: number, env: Record<string, string>, verbose = false): Promise<AppProcess> {
  const dir = mkdtempSync(join(tmpdir(), "celeriac-"));
  const envFile = join(dir, ".env");
  writeFileSync(envFile, Object.entries(env).map(([k, v]) => `${k}=${v}`).join("\n") + "\n");
  const child: ChildProcess = spawn(process.execPath, COMMANDS[runtime](port, envFile), {
    cwd: ROOT,
    env: { ...process.env, ...env, PORT: String(port), WRANGLER_SEND_METRICS: "false", CI: "true" },
    stdio: ["ignore", verbose ? "inherit" : "pipe", verbose ? "inherit" : "pipe"],
    // A group of its own, so stopping it also stops what it started (npm's deno wrapper runs the
    // deno binary as a child, which a signal to the wrapper alone left running).
    detached: true,
  });
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, sig);
    } catch {
      child.kill(sig);
    }
  };
  let output = "";
  child.stdout?.on("data", (d) => (output = (output + d).slice(-8000)));
  child.stderr?.on("data", (d) => (output = (output + d).slice(-8000)));
  const url = `http://127.0.0.1:${port}`;
  const close = () =>
    new Promise<void>((done) => {
      if (child.exitCode !== null) return done();
      child.once("exit", () => done());
      signal("SIGTERM");
      setTimeout(() => signal("SIGKILL"), 5_000).unref();
    });
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`[celeriac] ${runtime} exited with ${child.exitCode}:\n${output}`);
    try {
      const r = await fetch(`${url}/healthz`);
      if (r.status === 200) return { url, runtime, close };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  await close();
  throw new Error(`[celeriac] ${runtime} did not become healthy at ${url} within 90 s:\n${output}`);
}
