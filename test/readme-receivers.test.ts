// The README's callback receivers (Node and Python), run as written: each gets a real callback
// from the Worker in workerd, verifies it, and refuses a forged one.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { freePort, ROOT } from "../dev/stack.ts";
import { call, settle, stack, until } from "./helpers/api.ts";

const readme = readFileSync(`${ROOT}/README.md`, "utf8");
/** The first code block of `lang` after `marker` in the README. */
function snippet(marker: string, lang: string): string {
  const at = readme.indexOf(marker);
  if (at < 0) throw new Error(`README has no "${marker}"`);
  const m = new RegExp(`\`\`\`${lang}\\n([\\s\\S]*?)\`\`\``).exec(readme.slice(at));
  if (!m) throw new Error(`no ${lang} block after "${marker}"`);
  return m[1]!;
}

const running: ChildProcess[] = [];
afterAll(() => {
  for (const p of running) if (p.exitCode === null) p.kill("SIGTERM");
});

/** Starts a receiver from the README and returns its URL and what it printed so far. */
async function start(file: string, code: string, command: string[]) {
  const dir = `${ROOT}/dist/readme-receivers`;
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${dir}/${file}`, code);
  const port = await freePort();
  const child = spawn(command[0]!, [...command.slice(1), `${dir}/${file}`], {
    env: { ...process.env, PORT: String(port), CELERIAC_WEBHOOK_SECRET: stack().env.CELERIAC_WEBHOOK_SECRET! },
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.push(child);
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  const url = `http://127.0.0.1:${port}/hook`;
  await until(`${file} to listen`, async () =>
    (await fetch(url, { method: "POST", body: "{}" }).catch(() => null))?.status === 401 ? true : undefined,
  );
  return { url, output: () => out };
}

async function roundTrip(receiver: { url: string; output: () => string }) {
  // Forged: a signature made with another secret is refused.
  const forged = await fetch(receiver.url, {
    method: "POST",
    headers: { "webhook-id": "x", "webhook-timestamp": String(Math.floor(Date.now() / 1000)), "webhook-signature": "v1,AAAA" },
    body: "{}",
  });
  expect(forged.status).toBe(401);
  // A webhook task is signed with the same secret, but its body is the caller's: one posing as a
  // callback (here of itself) is refused, since its webhook-id is not `<id>.<type>`.
  const r = await call("POST", "/v1/tasks/webhook", {
    payload: {
      url: receiver.url.replace("/hook", "/work"),
      body: { json: { type: "task.succeeded", id: "tsk_forged", state: "succeeded" } },
    },
    callback: receiver.url,
  });
  const done = await settle(r.body.id);
  expect(done).toMatchObject({ state: "failed", error: { code: "http_401" } });
  await until("the receiver to print the event", async () =>
    receiver.output().includes(`task.failed ${r.body.id} failed`) ? true : undefined,
  );
  expect(receiver.output()).not.toContain("tsk_forged");
  const rec = await until("the callback delivered", async () => {
    const t = (await call("GET", `/v1/tasks/${r.body.id}`)).body;
    return t.callbacks?.[0]?.status === "delivered" ? t : undefined;
  });
  expect(rec.callbacks[0].attempts).toBe(1);
}

const hasPython = spawnSync("python3", ["--version"]).status === 0;

describe("README callback receivers", () => {
  it("Node: verifies a real callback with standardwebhooks", async () => {
    const receiver = await start("receiver.ts", snippet("**Verifying a callback (Node),**", "ts"), [process.execPath]);
    await roundTrip(receiver);
  });

  it.skipIf(!hasPython)("Python: verifies a real callback with the standard library", async () => {
    const receiver = await start("receiver.py", snippet("**Verifying a callback (Python),**", "python"), ["python3"]);
    await roundTrip(receiver);
  });
});
