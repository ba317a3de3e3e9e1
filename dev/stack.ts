// The local stack: Upstash-REST bridge, mail sink, QStash-compatible broker and the Worker under
// `wrangler dev` (or the Node / Deno entry). `npm run dev` and the tests both start it from here.
import { join, resolve } from "node:path";
import { RESEND_WEBHOOK_PATH } from "../src/email-events.ts";
import { type Broker, startBroker } from "./broker/index.ts";
import { denoBinary } from "./deno-bin.ts";
import { type MailSink, type MailSinkOptions, startMailSink } from "./mail-sink.ts";
import { assertPortFree, freePort, listening, type Part } from "./ports.ts";
import { spawnGroup } from "./process-group.ts";
import { type RedisBridge, startRedisBridge } from "./redis-bridge.ts";
import { type StaticSite, startStaticSite } from "./static-site.ts";
import { startTurnstile, type TurnstileStandIn } from "./turnstile.ts";
import { WORKERD, workerdServe } from "./workerd-serve.ts";

export { freePort, PortInUseError } from "./ports.ts";

export const ROOT = resolve(import.meta.dirname, "..");

/** The API key the local stack accepts. */
export const DEV_API_KEY = "celeriac-dev-key-change-me";
/** The secret the local stack's verification task signs its tokens with (verify them with it). */
export const DEV_VERIFICATION_SECRET = "celeriac-dev-verification-secret-change-me";
/** The secret the local stack's verification task keys its codes with (celeriac's alone). */
export const DEV_VERIFICATION_CODE_SECRET = "celeriac-dev-verification-code-secret-change-me";

export interface StackOptions {
  /**
   * Ports; 0 picks free ones.
   * @default bridge 8079, sink 8025, broker 8080, worker 8787, turnstile 8090, demo site 5500
   */
  ports?: Partial<Record<Part, number>>;
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
  /** Aborting stops start-up: whatever started is closed and startStack rejects. */
  signal?: AbortSignal;
  /** The mail sink's limits and latency. @default Resend's: 5 requests/s per key, no added latency */
  sink?: Pick<MailSinkOptions, "rateLimit" | "rateWindowMs" | "latencyMs">;
}

/** The default ports of `./dev/run dev`. */
export const DEFAULT_PORTS: Record<Part, number> = { bridge: 8079, sink: 8025, broker: 8080, worker: 8787, turnstile: 8090, site: 5500 };

/**
 * Which runtime serves the app: "workerd" is `wrangler dev` (workerd behind wrangler's proxy, the
 * dev runtime), "workerd-serve" the deploy bundle in `workerd serve` alone (the production runtime).
 */
export type Runtime = "workerd" | "workerd-serve" | "node" | "deno";

export interface Stack {
  bridge: RedisBridge;
  sink: MailSink;
  broker: Broker;
  /** Turnstile's siteverify, offline. */
  turnstile: TurnstileStandIn;
  /** examples/ on an origin of its own (the demo pages call the Worker cross-origin). */
  site: StaticSite;
  worker: AppProcess;
  /** The env the app runs with. */
  env: Record<string, string>;
  close(): Promise<void>;
}

export interface AppProcess {
  url: string;
  runtime: Runtime;
  /** Its process group (the runtime and everything it started, e.g. wrangler's workerd). */
  pid: number;
  close(): Promise<void>;
}

/** The env for an app served at `url` against these stand-ins. */
export function stackEnv(
  parts: { bridge: RedisBridge; sink: MailSink; broker: Broker; turnstile?: TurnstileStandIn; site?: StaticSite },
  url: string,
  vars: Record<string, string> = {},
) {
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
    CELERIAC_RECEIPT_SECRET: "celeriac-dev-receipt-secret-change-me",
    ...(parts.turnstile ? { TURNSTILE_VERIFY_URL: parts.turnstile.url } : {}),
    VERIFICATION_TOKEN_SECRET: DEV_VERIFICATION_SECRET,
    VERIFICATION_CODE_SECRET: DEV_VERIFICATION_CODE_SECRET,
    RESEND_WEBHOOK_SECRET: "whsec_Y2VsZXJpYWMtZGV2LXJlc2VuZC1ldmVudHM=",
    ...vars,
    // The demo pages' origin is always allowed, beside any the developer lists.
    ...(parts.site ? { CELERIAC_PUBLIC_ORIGINS: [parts.site.url, vars.CELERIAC_PUBLIC_ORIGINS].filter(Boolean).join(",") } : {}),
  };
}

export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const p: Record<Part, number> = { ...DEFAULT_PORTS, ...opts.ports };
  // Every chosen port is checked first, so a second stack fails at once, naming the part.
  for (const part of ["worker", "broker", "bridge", "sink", "turnstile", "site"] as const) await assertPortFree(part, p[part]);
  const started = await Promise.allSettled([
    listening("bridge", p.bridge, () => startRedisBridge({ port: p.bridge, backend: opts.redis ?? "auto" })),
    listening("sink", p.sink, () => startMailSink({ ...opts.sink, port: p.sink })),
    listening("broker", p.broker, () =>
      startBroker({
        port: p.broker,
        timeScale: opts.timeScale ?? 1,
        ...(opts.brokerDataDir ? { dataDir: opts.brokerDataDir } : {}),
        log: opts.verbose ?? false,
      }),
    ),
    listening("turnstile", p.turnstile, () => startTurnstile({ port: p.turnstile })),
  ]);
  let site: StaticSite | undefined;
  const closeAll = () =>
    Promise.allSettled([...started.map((r) => (r.status === "fulfilled" ? r.value.close() : undefined)), site?.close()]);
  const failed = started.find((r) => r.status === "rejected");
  if (failed) {
    await closeAll();
    throw failed.reason;
  }
  const [bridge, sink, broker, turnstile] = started.map((r) => (r as PromiseFulfilledResult<unknown>).value) as [
    RedisBridge,
    MailSink,
    Broker,
    TurnstileStandIn,
  ];
  let worker: AppProcess;
  let env: Record<string, string>;
  try {
    const port = p.worker === 0 ? await freePort() : p.worker;
    // The demo pages learn the Worker's URL from the site; the Worker allows the site's origin.
    site = await listening("site", p.site, () =>
      startStaticSite({ dir: join(ROOT, "examples"), port: p.site, workerUrl: `http://127.0.0.1:${port}` }),
    );
    env = stackEnv({ bridge, sink, broker, turnstile, site }, `http://127.0.0.1:${port}`, opts.vars);
    // The sink reports delivery events to the Worker, as Resend does to a configured endpoint.
    sink.sendEventsTo({ url: `http://127.0.0.1:${port}${RESEND_WEBHOOK_PATH}`, secret: env.RESEND_WEBHOOK_SECRET! });
    worker = await startApp(opts.runtime ?? "workerd", port, env, {
      verbose: opts.verbose ?? false,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  } catch (err) {
    await closeAll();
    throw err;
  }
  return {
    bridge,
    sink,
    broker,
    turnstile,
    site,
    worker,
    env,
    async close() {
      await worker.close();
      await Promise.allSettled([broker.close(), sink.close(), bridge.close(), turnstile.close(), site.close()]);
    },
  };
}

// The environment children get: what runtimes need to run, never this process's other
// variables (vitest's, the developer's shell secrets), plus the app's bindings.
const PASSED_ON = [
  "PATH",
  "HOME",
  "TMPDIR",
  "LANG",
  "LC_ALL",
  "TERM",
  "NO_COLOR",
  "FORCE_COLOR",
  "XDG_CONFIG_HOME",
  "XDG_CACHE_HOME",
  "DENO_DIR",
  "NODE_EXTRA_CA_CERTS",
  "SSL_CERT_FILE",
];

function childEnv(env: Record<string, string>, port: number): Record<string, string> {
  const base = Object.fromEntries(PASSED_ON.flatMap((k) => (process.env[k] === undefined ? [] : [[k, process.env[k]!]])));
  return { ...base, ...env, PORT: String(port) };
}

/**
 * `node wrangler.js dev` on loopback at `port` (then `extra`): bindings from the environment only
 * (`--env-file /dev/null`), no inspector port to collide on, the Worker's logs at wrangler's `log`
 * level. The dev stack and the tests that serve a Worker of their own share it.
 */
export function wranglerDevArgs(port: number, extra: string[] = []): string[] {
  return [
    join(ROOT, "node_modules/wrangler/bin/wrangler.js"),
    "dev",
    ...extra,
    ...["--port", String(port), "--ip", "127.0.0.1", "--env-file", "/dev/null", "--inspector-port", "0"],
    ...["--show-interactive-dev-session=false", "--log-level", "log"],
  ];
}

const COMMANDS: Record<Runtime, (port: number, env: Record<string, string>) => [string, string[], Record<string, string>]> = {
  // The bindings reach wrangler as its own environment (CLOUDFLARE_INCLUDE_PROCESS_ENV), so no
  // secret is ever written to a file; `--env-file /dev/null` keeps it from reading .dev.vars or
  // .env itself. Log level "log" shows the Worker's console.log and ctx.log lines, as `wrangler
  // tail` would.
  workerd: (port) => [
    process.execPath,
    wranglerDevArgs(port),
    { CLOUDFLARE_INCLUDE_PROCESS_ENV: "true", WRANGLER_SEND_METRICS: "false", CI: "true" },
  ],
  // The bindings reach workerd as its environment too (`fromEnvironment` in the generated config).
  "workerd-serve": (port, env) => {
    const served = workerdServe(port, env);
    return [WORKERD, served.args, served.env];
  },
  node: () => [process.execPath, [join(ROOT, "src/node.ts")], {}],
  deno: () => [denoBinary(), ["run", "--allow-net", "--allow-env", "--no-prompt", join(ROOT, "src/deno.ts")], {}],
};

const LABELS: Record<Runtime, string> = {
  workerd: "the Worker (wrangler dev, workerd)",
  "workerd-serve": "the Worker (workerd serve, the deploy bundle)",
  node: "the Node app",
  deno: "the Deno app",
};

/** How long an unhealthy answer may last before start-up gives up (config problems: at once). */
const UNHEALTHY_GRACE_MS = 3_000;
/** Start-up gives up after this long without any answer (ms). */
const START_TIMEOUT_MS = 60_000;

export interface StartAppOptions {
  /** Copy the app's output to this process's. @default false */
  verbose?: boolean;
  /** Aborting stops the start-up and the app. */
  signal?: AbortSignal;
}

/**
 * Starts the app in a process group of its own and waits until `/healthz` answers 200. Fails
 * within seconds, with `/healthz`'s reasons, when it answers 503, and with the app's output when
 * it exits.
 */
export async function startApp(
  runtime: Runtime,
  port: number,
  env: Record<string, string>,
  opts: StartAppOptions | boolean = {},
): Promise<AppProcess> {
  const { verbose = false, signal } = typeof opts === "boolean" ? { verbose: opts } : opts;
  await assertPortFree("worker", port);
  const [command, args, extra] = COMMANDS[runtime](port, env);
  const group = spawnGroup(command, args, { cwd: ROOT, env: { ...childEnv(env, port), ...extra }, echo: verbose });
  const url = `http://127.0.0.1:${port}`;
  const close = () => group.close();
  const fail = async (message: string) => {
    await close();
    const output = verbose ? "" : group.output().trim();
    return new Error(output ? `${message}\n${output}` : message);
  };
  const deadline = Date.now() + START_TIMEOUT_MS;
  let unhealthySince: number | undefined;
  while (Date.now() < deadline) {
    if (signal?.aborted) throw await fail(`[celeriac] start-up of ${LABELS[runtime]} stopped`);
    if (group.child.exitCode !== null || group.child.signalCode !== null) {
      throw await fail(
        `[celeriac] ${LABELS[runtime]} exited (${group.child.exitCode ?? group.child.signalCode}) before it was healthy${verbose ? "; its output is above" : "; its output:"}`,
      );
    }
    const health = await probe(url);
    if (health?.ok) return { url, runtime, pid: group.pid, close };
    if (health) {
      unhealthySince ??= Date.now();
      // A bad variable will not fix itself; a dependency gets a moment to answer.
      if (health.config || Date.now() - unhealthySince > UNHEALTHY_GRACE_MS) {
        throw await fail(`[celeriac] ${LABELS[runtime]} is unhealthy: ${health.problems.join("; ")}`);
      }
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw await fail(`[celeriac] ${LABELS[runtime]} did not answer ${url}/healthz within ${START_TIMEOUT_MS / 1000} s`);
}

/** One `/healthz` call: undefined while nothing answers, else whether it is healthy and why not. */
async function probe(url: string): Promise<{ ok: boolean; config: boolean; problems: string[] } | undefined> {
  try {
    const r = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5_000) });
    const body = (await r.json().catch(() => ({}))) as { checks?: Record<string, { ok?: boolean; problem?: string; problems?: string[] }> };
    if (r.status === 200) return { ok: true, config: false, problems: [] };
    const checks = Object.entries(body.checks ?? {}).filter(([, c]) => c.ok === false);
    const problems = checks.flatMap(([name, c]) => c.problems ?? [`${name}: ${c.problem ?? "not ok"}`]);
    return {
      ok: false,
      config: checks.some(([name]) => name === "config"),
      problems: problems.length ? problems : [`GET /healthz answered ${r.status}`],
    };
  } catch {
    return undefined; // not listening yet
  }
}
