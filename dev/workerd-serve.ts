// celeriac in workerd itself, the runtime Cloudflare runs: the bundle `wrangler deploy --dry-run`
// writes (what a deploy would upload), served by `workerd serve` with a config generated here, with
// wrangler.jsonc's vars and the given env as bindings. No wrangler proxy, no Node process in the
// request path: the benches' primary runtime (`wrangler dev` adds both, see bench/RESULTS.md).
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { unstable_readConfig } from "wrangler";

export const WORKERD = join(import.meta.dirname, "../node_modules/workerd/bin/workerd");
const ROOT = join(import.meta.dirname, "..");

/**
 * Bundles the Worker as `wrangler deploy` would; returns the directory holding it.
 * @param cwd the project to bundle (its wrangler config and node_modules). @default this checkout
 * @param args more wrangler arguments, e.g. another entry. @default none
 */
export function bundleWorker(cwd = ROOT, args: string[] = []): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), "celeriac-bundle-"));
  const r = spawnSync(
    process.execPath,
    [join(ROOT, "node_modules/wrangler/bin/wrangler.js"), "deploy", "--dry-run", "--outdir", dir, ...args],
    {
      cwd,
      encoding: "utf8",
      env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" },
      timeout: 120_000,
    },
  );
  if (r.status !== 0) throw new Error(`[celeriac] wrangler deploy --dry-run failed:\n${r.stdout}\n${r.stderr}`);
  const file = readdirSync(dir).find((f) => f.endsWith(".js"));
  if (!file) throw new Error(`[celeriac] wrangler deploy --dry-run wrote no .js into ${dir}`);
  return { dir, file };
}

/** wrangler.jsonc's `compatibility_date` and `vars` (string values), as wrangler reads them. */
export function wranglerConfig(): { compatibilityDate: string; vars: Record<string, string> } {
  const config = unstable_readConfig({ config: join(ROOT, "wrangler.jsonc") });
  const vars = Object.fromEntries(Object.entries(config.vars).flatMap(([k, v]) => (typeof v === "string" ? [[k, v]] : [])));
  return { compatibilityDate: config.compatibility_date ?? "2026-11-01", vars };
}

/**
 * A workerd config (capnp text) serving `bundle` on 127.0.0.1:`port`. Each binding is read from
 * workerd's own environment (`fromEnvironment`), so no secret is written into the config file.
 */
export function workerdConfig(bundle: { file: string }, port: number, bindings: string[], compatibilityDate: string): string {
  const text = (s: string) => JSON.stringify(s); // capnp text literals take JSON's escapes
  const b = bindings.map((name) => `(name = ${text(name)}, fromEnvironment = ${text(name)})`);
  return `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = .worker),
    # Loopback and private addresses too: the local broker, Redis bridge and mail sink.
    (name = "net", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = "main")],
);
const worker :Workerd.Worker = (
  modules = [(name = ${text(bundle.file)}, esModule = embed ${text(bundle.file)})],
  compatibilityDate = ${text(compatibilityDate)},
  bindings = [${b.join(", ")}],
  globalOutbound = "net",
);
`;
}

let bundled: { dir: string; file: string } | undefined;

/**
 * How to run `workerd serve` on `port` with wrangler.jsonc's vars and `env` as bindings: the
 * arguments (the config is written next to the bundle, built once per process) and the
 * environment workerd must get.
 */
export function workerdServe(port: number, env: Record<string, string>): { args: string[]; env: Record<string, string> } {
  if (!bundled) {
    bundled = bundleWorker();
    // The bundle and its configs live as long as this process (workerd reads them at start-up).
    const dir = bundled.dir;
    process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  }
  const { compatibilityDate, vars } = wranglerConfig();
  const all = { ...vars, ...env };
  const config = join(bundled.dir, `config-${port}.capnp`);
  writeFileSync(config, workerdConfig(bundled, port, Object.keys(all), compatibilityDate));
  return { args: ["serve", config], env: all };
}
