// `./dev/run dev`: the whole relay locally, offline, no accounts. Starts the Upstash-REST bridge
// (over the local Redis when one answers, else embedded), the Resend-compatible mail sink, the
// QStash-compatible broker (state kept in .data/broker across restarts) and the Worker under
// `wrangler dev`, then prints every URL. Ctrl-C, SIGINT or SIGTERM stops it all and frees the ports.
import { copyFileSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs, parseEnv } from "node:util";
import { ConfigError, loadConfig } from "../src/env.ts";
import { DEV_CURRENT_SIGNING_KEY, DEV_NEXT_SIGNING_KEY, DEV_TOKEN } from "./broker/index.ts";
import { PART_NAMES, type Part, PortInUseError } from "./ports.ts";
import { DEFAULT_REDIS_BRIDGE_TOKEN } from "./redis-bridge.ts";
import { DEFAULT_PORTS, ROOT, type Stack, stackEnv, startStack } from "./stack.ts";

const USAGE = `usage: ./dev/run dev [--port N] [--broker-port N] [--bridge-port N] [--sink-port N] [--site-port N] [--turnstile-port N]
  (or PORT, BROKER_PORT, BRIDGE_PORT, SINK_PORT, SITE_PORT, TURNSTILE_PORT; defaults 8787, 8080, 8079, 8025, 5500, 8090;
  0 picks a free port)`;

/** Flag and environment variable of each part's port; a flag wins over the variable. */
const PORT_SOURCES: Record<Part, [flag: string, variable: string]> = {
  worker: ["port", "PORT"],
  broker: ["broker-port", "BROKER_PORT"],
  bridge: ["bridge-port", "BRIDGE_PORT"],
  sink: ["sink-port", "SINK_PORT"],
  site: ["site-port", "SITE_PORT"],
  turnstile: ["turnstile-port", "TURNSTILE_PORT"],
};

/** The stand-ins' URLs and credentials come from the stack (its ports may change), never from .dev.vars. */
const WIRING = [
  "CELERIAC_PUBLIC_URL",
  "QSTASH_URL",
  "QSTASH_TOKEN",
  "QSTASH_CURRENT_SIGNING_KEY",
  "QSTASH_NEXT_SIGNING_KEY",
  "UPSTASH_REDIS_REST_URL",
  "UPSTASH_REDIS_REST_TOKEN",
  "RESEND_BASE_URL",
  "TURNSTILE_VERIFY_URL",
];

function die(message: string): never {
  console.error(message);
  process.exit(1);
}

function ports(): Record<Part, number> {
  let flags: Record<string, string | boolean | undefined>;
  try {
    const options = Object.fromEntries(Object.values(PORT_SOURCES).map(([flag]) => [flag, { type: "string" as const }]));
    flags = parseArgs({ options: { ...options, help: { type: "boolean" } }, strict: true }).values;
  } catch (err) {
    die(`[celeriac] ${(err as Error).message}\n${USAGE}`);
  }
  if (flags.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const out = { ...DEFAULT_PORTS };
  for (const [part, [flag, variable]] of Object.entries(PORT_SOURCES) as [Part, [string, string]][]) {
    const raw = (flags[flag] as string | undefined) ?? process.env[variable];
    if (raw === undefined || raw === "") continue;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 0 || n > 65535)
      die(`[celeriac] --${flag} / ${variable} must be a port number (0 to 65535), got "${raw}"`);
    out[part] = n;
  }
  return out;
}

/** .dev.vars parsed as wrangler parses it (dotenv: quotes, comments), without the stack's wiring. */
function devVars(): Record<string, string> {
  const file = join(ROOT, ".dev.vars");
  if (!existsSync(file)) {
    copyFileSync(join(ROOT, ".dev.vars.example"), file);
    console.log("[celeriac] wrote .dev.vars from .dev.vars.example");
  }
  const vars = parseEnv(readFileSync(file, "utf8")) as Record<string, string>;
  for (const name of WIRING) delete vars[name];
  return vars;
}

const chosen = ports();
const vars = devVars();

// The configuration is checked before anything starts: a bad .dev.vars value fails at once, by name.
const preview = (part: Part) => `http://127.0.0.1:${chosen[part] || 1}`;
const previewEnv = stackEnv(
  {
    bridge: { url: preview("bridge"), token: DEFAULT_REDIS_BRIDGE_TOKEN },
    sink: { url: preview("sink") },
    broker: { url: preview("broker"), token: DEV_TOKEN, currentSigningKey: DEV_CURRENT_SIGNING_KEY, nextSigningKey: DEV_NEXT_SIGNING_KEY },
  } as Parameters<typeof stackEnv>[0],
  preview("worker"),
  vars,
);
try {
  loadConfig(previewEnv);
} catch (err) {
  die(err instanceof ConfigError ? `[celeriac] .dev.vars: ${err.problems.join("; ")}` : String(err));
}

// Signals stop start-up too, not only a running stack.
const abort = new AbortController();
let stack: Stack | undefined;
let stopping = false;
const stop = async (sig: NodeJS.Signals) => {
  if (stopping) process.exit(1); // a second signal: the exit hook kills what is left
  stopping = true;
  console.log(`\n[celeriac] ${sig}: stopping…`);
  abort.abort();
  if (!stack) return; // start-up sees the abort and closes what it started
  await stack.close();
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
process.on("SIGHUP", stop);

try {
  stack = await startStack({ ports: chosen, brokerDataDir: join(ROOT, ".data/broker"), verbose: true, vars, signal: abort.signal });
} catch (err) {
  if (abort.signal.aborted) process.exit(0);
  if (err instanceof PortInUseError) {
    const [flag, variable] = PORT_SOURCES[err.part];
    die(`${err.message}; pick another with --${flag} N or ${variable}=N`);
  }
  die((err as Error).message);
}

function withoutPassword(url: string) {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.href;
  } catch {
    return "REDIS_URL";
  }
}

// The key the Worker accepts, parsed by the same code the Worker uses.
const apiKey = loadConfig(stack.env).apiKeys[0]!.key;
const w = stack.worker.url;
const row = (part: Part, url: string, note: string) => `  ${PART_NAMES[part].padEnd(26)}${url.padEnd(26)}${note}`;
console.log(`
[celeriac] local stack is up
${row("worker", w, `health: ${w}/healthz (wrangler dev, workerd)`)}
${row("broker", stack.broker.url, `state: ${stack.broker.url}/_broker/state`)}
${row("bridge", stack.bridge.url, stack.bridge.backend === "redis" ? `over the local Redis (${withoutPassword(process.env.REDIS_URL ?? "redis://127.0.0.1:6379")})` : "embedded in-memory Redis")}
${row("sink", stack.sink.url, `mailbox: ${stack.sink.url}/`)}
${row("site", stack.site.url, `verify-email: ${stack.site.url}/verify-email/`)}
${row("turnstile", new URL(stack.turnstile.url).origin, "siteverify (/turnstile/v0/siteverify) for Cloudflare's test keys")}
  API key (.dev.vars)       ${apiKey}
  dashboard                 ${w}/ui (sign in with the API key above)

  curl -s -X POST ${w}/v1/tasks/send-email \\
    -H 'authorization: Bearer ${apiKey}' -H 'content-type: application/json' \\
    -d '{"payload":{"to":"you@celeriac.dev","subject":"Order placed","text":"Thanks!"}}'
`);

// A task whose own variables are missing does not stop the relay, but is said at once.
const health = (await (await fetch(`${w}/healthz`)).json()) as { checks?: { tasks?: { problems?: string[] } } };
for (const problem of health.checks?.tasks?.problems ?? [])
  console.warn(`[celeriac] warning: ${problem} (that task answers 503 until .dev.vars is fixed)`);

// Cron tasks fire locally too: make the local broker's schedules match the code.
const sync = await fetch(`${w}/v1/schedules/sync`, { method: "POST", headers: { authorization: `Bearer ${apiKey}` } });
console.log(`[celeriac] schedules synced with the local broker: ${sync.status} ${await sync.text()}`);
