// Serves a Worker of a test's own (its own directory and wrangler config) with `wrangler dev` on a
// free port, in a process group of its own (dev/process-group.ts) that dies with the test run.
import { spawnGroup } from "../../dev/process-group.ts";
import { freePort, wranglerDevArgs } from "../../dev/stack.ts";

export interface DevWorker {
  url: string;
  output(): string;
  close(): Promise<void>;
}

/**
 * `wrangler dev [args]` in `cwd`. The bindings reach wrangler through its environment (with
 * `secrets` declared, it takes each name its config declares from there), never through a file.
 * Resolves once `/healthz` answers 200.
 */
export async function wranglerDev(cwd: string, args: string[], env: Record<string, string>): Promise<DevWorker> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const group = spawnGroup(process.execPath, wranglerDevArgs(port, args), {
    cwd,
    env: {
      PATH: process.env.PATH!,
      HOME: process.env.HOME ?? "/tmp",
      ...env,
      CELERIAC_PUBLIC_URL: url,
      WRANGLER_SEND_METRICS: "false",
      CI: "true",
    },
  });
  const close = () => group.close();
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    if (group.child.exitCode !== null) {
      await close();
      throw new Error(`[celeriac] wrangler dev exited with ${group.child.exitCode}:\n${group.output()}`);
    }
    const r = await fetch(`${url}/healthz`).catch(() => undefined);
    if (r?.status === 200) return { url, output: group.output, close };
    await new Promise((r) => setTimeout(r, 200));
  }
  await close();
  throw new Error(`[celeriac] wrangler dev did not become healthy at ${url}:\n${group.output()}`);
}
