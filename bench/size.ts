/**
 * Size and start-up: the gzip size of the bundle `wrangler deploy --dry-run` produces, and the
 * start-up time of that bundle (import, which runs `createApp()` at module scope) in a fresh Node
 * process, next to a bare Hono app bundled the same way.
 *   node bench/size.ts [--quick] [--json out.json]
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { gzipSync } from "node:zlib";
import { freePort, ROOT } from "../dev/stack.ts";
import { WORKERD, workerdConfig } from "../dev/workerd-serve.ts";
import { bytes, emit, ms, note, QUICK, ratio, type SectionResult, summary, table } from "./lib.ts";

const RUNS = QUICK ? 15 : 40;
const WRANGLER = join(ROOT, "node_modules/wrangler/bin/wrangler.js");

interface Bundle {
  name: string;
  dir: string;
  file: string;
  raw: number;
  gzip: number;
  /** What wrangler itself printed as "Total Upload". */
  reported: string;
  /** Bytes in the (unminified) output by package, from wrangler's esbuild metafile. */
  byPackage: [string, number][];
}

function dryRun(name: string, extra: string[], cwd: string): Bundle {
  const dir = mkdtempSync(join(tmpdir(), `celeriac-size-${name}-`));
  const meta = join(dir, "meta.json");
  const r = spawnSync(process.execPath, [WRANGLER, "deploy", "--dry-run", "--outdir", dir, "--metafile", meta, ...extra], {
    cwd,
    encoding: "utf8",
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" },
    timeout: 120_000,
  });
  if (r.status !== 0) throw new Error(`[celeriac] bench: wrangler dry run of ${name} failed:\n${r.stdout}\n${r.stderr}`);
  const file = readdirSync(dir).find((f) => f.endsWith(".js"))!;
  const code = readFileSync(join(dir, file));
  const reported = /Total Upload: ([^\n]+)/.exec(r.stdout + r.stderr)?.[1]?.trim() ?? "?";
  const by = new Map<string, number>();
  try {
    const m = JSON.parse(readFileSync(meta, "utf8")) as { outputs: Record<string, { inputs: Record<string, { bytesInOutput: number }> }> };
    const out = Object.entries(m.outputs).find(([k]) => k.endsWith(".js"))?.[1];
    for (const [path, v] of Object.entries(out?.inputs ?? {})) {
      const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path)?.[1] ?? `celeriac ${path.split("/")[0]}/`;
      by.set(pkg, (by.get(pkg) ?? 0) + v.bytesInOutput);
    }
  } catch {
    // no metafile: the breakdown stays empty
  }
  const byPackage = [...by].sort((a, b) => b[1] - a[1]);
  return { name, dir, file: join(dir, file), raw: code.length, gzip: gzipSync(code).length, reported, byPackage };
}

/** ms from just before `import()` of the bundle to just after it resolved, in a fresh process. */
function startup(file: string): Promise<number> {
  const script = `const t = performance.now(); const m = await import(${JSON.stringify(file)}); const d = performance.now() - t;
if (typeof m.default?.fetch !== "function") throw new Error("no fetch handler"); process.stdout.write(String(d));`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.on("exit", (code) => {
      clearTimeout(timer);
      code === 0 ? resolve(Number(out)) : reject(new Error(`[celeriac] bench: start-up run failed: ${err}`));
    });
  });
}

/** Wall time of a whole fresh `node` that imports the bundle and exits. */
function processTime(file: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t = performance.now();
    const child = spawn(process.execPath, ["--input-type=module", "-e", `await import(${JSON.stringify(file)});`], { stdio: "ignore" });
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.on("exit", (code) => {
      clearTimeout(timer);
      code === 0 ? resolve(performance.now() - t) : reject(new Error("[celeriac] bench: process run failed"));
    });
  });
}

const WORKERD_RUNS = QUICK ? 6 : 16;

/** ms from spawning `workerd serve` with the bundle to its first answer. */
async function workerdStartup(b: Bundle): Promise<number> {
  const port = await freePort();
  const config = join(b.dir, `startup-${port}.capnp`);
  writeFileSync(config, workerdConfig({ file: basename(b.file) }, port, [], "2026-11-01"));
  const t = performance.now();
  const child = spawn(WORKERD, ["serve", config], { stdio: "ignore" });
  try {
    for (let i = 0; i < 4000; i++) {
      try {
        await (await fetch(`http://127.0.0.1:${port}/`)).arrayBuffer();
        return performance.now() - t;
      } catch {
        await new Promise((r) => setTimeout(r, 2));
      }
    }
    throw new Error("[celeriac] bench: workerd did not answer");
  } finally {
    child.kill("SIGKILL");
  }
}

export async function runSize(): Promise<SectionResult> {
  const started = performance.now();
  note("size: wrangler deploy --dry-run (celeriac, then a bare Hono app)");
  const celeriac = dryRun("celeriac", [], ROOT);
  // The bare app is bundled from a folder without a wrangler config, so only these flags apply.
  const cwd = mkdtempSync(join(tmpdir(), "celeriac-size-cwd-"));
  const bare = dryRun(
    "bare-hono",
    ["--name", "bare-hono", "--compatibility-date", "2026-11-01", join(ROOT, "bench/fixtures/bare-hono.ts")],
    cwd,
  );
  // Before issue 13: postal-mime and standardwebhooks bundled, not minified, keepNames on (a config without those lines).
  const beforeDir = mkdtempSync(join(tmpdir(), "celeriac-size-before-"));
  const beforeToml = join(beforeDir, "wrangler.toml");
  writeFileSync(
    beforeToml,
    `name = "celeriac"\nmain = ${JSON.stringify(join(ROOT, "src/worker.ts"))}\ncompatibility_date = "2026-11-01"\n`,
  );
  const before = dryRun("celeriac-before", ["--config", beforeToml], ROOT);
  const bundles = [celeriac, bare];
  note("size: start-up in workerd serve (spawn to first answer), alternating");
  const wd: Record<string, number[]> = { celeriac: [], "bare-hono": [] };
  for (let i = 0; i < WORKERD_RUNS; i++) {
    for (const b of i % 2 ? [...bundles].reverse() : bundles) wd[b.name]!.push(await workerdStartup(b));
  }
  note(`size: start-up, ${RUNS} fresh processes per bundle, alternating`);
  const imp: Record<string, number[]> = { celeriac: [], "bare-hono": [] };
  const proc: Record<string, number[]> = { celeriac: [], "bare-hono": [] };
  try {
    for (const b of bundles) await startup(b.file); // warm the file cache
    for (let i = 0; i < RUNS; i++) {
      for (const b of i % 2 ? [...bundles].reverse() : bundles) {
        imp[b.name]!.push(await startup(b.file));
        proc[b.name]!.push(await processTime(b.file));
      }
    }
  } finally {
    for (const d of [celeriac.dir, bare.dir, before.dir, beforeDir, cwd]) rmSync(d, { recursive: true, force: true });
  }
  const s = (xs: number[]) => summary(xs);
  const seconds = (performance.now() - started) / 1000;
  const ci = s(imp.celeriac!),
    bi = s(imp["bare-hono"]!),
    cp = s(proc.celeriac!),
    bp = s(proc["bare-hono"]!);
  const markdown = `## 4. Size and start-up

The Worker bundle as \`npx wrangler deploy --dry-run --outdir <tmp>\` writes it (esbuild inside
wrangler; minified with postal-mime and standardwebhooks (resend's, for inbound mail and webhook checks celeriac never calls) aliased away, as \`wrangler.jsonc\` says; the "before" row is the
same code built without those settings), gzip-compressed with Node's zlib at its default level;
wrangler's own "Total Upload" line beside it. The baseline is a bare Hono app
(\`bench/fixtures/bare-hono.ts\`, one route) bundled by the same wrangler with the same
compatibility date. Workers' limits: 3 MB gzipped on the free plan, 10 MB paid.

${table(
  ["bundle", "size", "gzip", "wrangler reports", "× bare Hono (gzip)"],
  [
    [
      "celeriac (`src/worker.ts`), as deployed: minified, postal-mime and standardwebhooks aliased away",
      bytes(celeriac.raw),
      bytes(celeriac.gzip),
      celeriac.reported,
      ratio(celeriac.gzip, bare.gzip),
    ],
    [
      "celeriac before: not minified, postal-mime and standardwebhooks bundled",
      bytes(before.raw),
      bytes(before.gzip),
      before.reported,
      ratio(before.gzip, bare.gzip),
    ],
    ["bare Hono app", bytes(bare.raw), bytes(bare.gzip), bare.reported, "1×"],
  ],
)}

Start-up in workerd itself: from spawning \`workerd serve\` (a config naming the bundle, no bindings)
to the first answer on its socket, ${WORKERD_RUNS} starts per bundle, alternating: celeriac p50
${ms(summary(wd.celeriac!).p50)}, bare Hono app p50 ${ms(summary(wd["bare-hono"]!).p50)} (difference ${ms(summary(wd.celeriac!).p50 - summary(wd["bare-hono"]!).p50)}).

Where celeriac's bundle comes from (bytes each package contributes to the output, from wrangler's
esbuild metafile):

${table(
  ["package", "bytes in bundle", "share"],
  celeriac.byPackage.map(([pkg, n]) => [pkg, bytes(n), `${((n / celeriac.byPackage.reduce((a, [, b]) => a + b, 0)) * 100).toFixed(1)} %`]),
)}

Start-up: a fresh \`node\` process (Node ${process.version}) \`import()\`s the bundle, which evaluates every
module and runs \`createApp()\` at module scope (the Workers entry is \`export default createApp()\`);
timed from just before the import to just after, ${RUNS} processes per bundle, alternating. The last
column is the whole process (spawn to exit), for scale. This is Node's V8, not workerd's isolate
start-up (which we could not time separately from \`wrangler dev\`'s own start); Workers allow
1 s of start-up.

${table(
  ["bundle", "import + createApp p50", "min", "p99", "whole process p50"],
  [
    ["celeriac", ms(ci.p50), ms(Math.min(...imp.celeriac!)), ms(ci.p99), ms(cp.p50)],
    ["bare Hono app", ms(bi.p50), ms(Math.min(...imp["bare-hono"]!)), ms(bi.p99), ms(bp.p50)],
    ["difference (celeriac − bare)", ms(ci.p50 - bi.p50), "", "", ms(cp.p50 - bp.p50)],
  ],
)}

Section wall time: ${seconds.toFixed(0)} s.`;
  return {
    id: "size",
    title: "Size and start-up",
    markdown,
    data: {
      celeriac,
      bare,
      before,
      startup: { celeriac: ci, bare: bi, workerd: { celeriac: summary(wd.celeriac!), bare: summary(wd["bare-hono"]!) } },
    },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) await emit(await runSize());
