// Serves a Worker of a test's own (its own directory and wrangler config) with `wrangler dev` on a
// free port, in a process group of its own so that stopping it also stops workerd.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { freePort, ROOT } from "../../dev/stack.ts";

export interface DevWorker {
  url: string;
  output(): string;
  close(): Promise<void>;
}

/**
 * `wrangler dev [args]` in `cwd`; the bindings reach wrangler through its environment (every name
 * the config declares is taken from there). Resolves once `/healthz` answers 200.
 */
export async function wranglerDev(cwd: string, args: string[], env: Record<string, string>): Promise<DevWorker> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(
    process.execPath,
    [join(ROOT, "node_modules/wrangler/bin/wrangler.js"), "dev", ...args, "--port", String(port), "--ip", "127.0.0.1", "--inspector-port", "0", "--show-interactive-dev-session=false", "--log-level", "log"],
    { cwd, env: { ...process.env, ...env, CELERIAC_PUBLIC_URL: url, WRANGLER_SEND_METRICS: "false", CI: "true" }, stdio: ["ignore", "pipe", "pipe"], detached: true },
  );
  let output = "";
  const keep = (d: Buffer) => (output = (output + d).slice(-20_000));
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, sig);
    } catch {
      // already gone
    }
  };
  const close = () =>
    new Promise<void>((done) => {
      if (child.exitCode !== null || child.signalCode !== null) return done();
      child.once("exit", () => done());
      signal("SIGTERM");
      setTimeout(() => signal("SIGKILL"), 5_000).unref();
    });
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`[celeriac] wrangler dev exited with ${child.exitCode}:\n${output}`);
    const r = await fetch(`${url}/healthz`).catch(() => undefined);
    if (r?.status === 200) return { url, output: () => output, close };
    await new Promise((r) => setTimeout(r, 200));
  }
  await close();
  throw new Error(`[celeriac] wrangler dev did not become healthy at ${url}:\n${output}`);
}
