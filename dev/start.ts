// `npm run dev`: the whole relay locally, offline, no accounts. Starts the Upstash-REST bridge
// (over the local Redis when one answers, else embedded), the Resend-compatible mail sink, the
// QStash-compatible broker (state kept in .data/broker across restarts) and the Worker under
// `wrangler dev`, then prints every URL. Ctrl-C stops it all.
import { copyFileSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { DEV_API_KEY, ROOT, startStack } from "./stack.ts";

const devVars = join(ROOT, ".dev.vars");
if (!existsSync(devVars)) {
  copyFileSync(join(ROOT, ".dev.vars.example"), devVars);
  console.log("[celeriac] wrote .dev.vars from .dev.vars.example");
}

// .dev.vars holds the developer's local bindings; they win over the stack's defaults.
const vars = Object.fromEntries(
  readFileSync(devVars, "utf8")
    .split("\n")
    .map((line) => /^\s*([A-Z0-9_]+)\s*=\s*(.*?)\s*$/.exec(line))
    .filter((m) => m !== null)
    .map((m) => [m[1]!, m[2]!.replace(/^"(.*)"$/, "$1")]),
);
const stack = await startStack({ brokerDataDir: join(ROOT, ".data/broker"), verbose: true, vars });
const w = stack.worker.url;
console.log(`
[celeriac] local stack is up
  Worker (wrangler dev)     ${w}            health: ${w}/healthz
  QStash-compatible broker  ${stack.broker.url}     state: ${stack.broker.url}/_broker/state
  Upstash-REST bridge       ${stack.bridge.url}     ${stack.bridge.backend === "redis" ? "over the local Redis" : "embedded in-memory Redis"}
  Mail sink (Resend API)    ${stack.sink.url}     mailbox: ${stack.sink.url}/
  API key                   ${DEV_API_KEY}

  curl -s -X POST ${w}/v1/tasks/send-email \\
    -H 'authorization: Bearer ${DEV_API_KEY}' -H 'content-type: application/json' \\
    -d '{"payload":{"to":"you@celeriac.dev","subject":"Order placed","text":"Thanks!"}}'
`);

// Cron tasks fire locally too: make the local broker's schedules match the code.
const sync = await fetch(`${w}/v1/schedules/sync`, { method: "POST", headers: { authorization: `Bearer ${stack.env.CELERIAC_API_KEYS!.split(":")[1]}` } });
console.log(`[celeriac] schedules synced with the local broker: ${sync.status} ${await sync.text()}`);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  console.log("\n[celeriac] stopping…");
  await stack.close();
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
