/**
 * `npm run bench`: every section, each in a fresh Node process, printed as markdown and written to
 * bench/RESULTS.md (with bench/noon-burst.svg).
 *   npm run bench                         # all sections (~10–15 min on 2 cores)
 *   npm run bench -- --quick              # smaller run (N = 100 only, fewer iterations)
 *   npm run bench -- --only noon,relay    # some sections: noon, burst, relay, size, growth, public, profile
 * A partial run replaces only its sections' blocks in RESULTS.md; the others are kept as they were.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { args, machine, note, QUICK, type SectionResult } from "./lib.ts";

const SECTIONS = [
  { id: "noon", file: "noon.ts", title: "1. The noon burst through Resend's limits" },
  { id: "burst", file: "burst.ts", title: "2. The webhook burst (no provider limit)" },
  { id: "relay", file: "relay.ts", title: "3. The relay's own cost" },
  { id: "size", file: "size.ts", title: "4. Size and start-up" },
  { id: "growth", file: "growth.ts", title: "5. How cost grows" },
  { id: "public", file: "public.ts", title: "6. Browser callers" },
  { id: "profile", file: "profile.ts", title: "7. Where a task's CPU goes in workerd" },
] as const;
/** A section that runs longer than this is stopped (ms). */
const SECTION_LIMIT_MS = 20 * 60_000;

const only = (() => {
  const at = args.indexOf("--only");
  const raw = at >= 0 ? args[at + 1] : args.find((a) => a.startsWith("--only="))?.slice(7);
  return raw ? raw.split(",").map((s) => s.trim()) : undefined;
})();
const unknown = only?.filter((id) => !SECTIONS.some((s) => s.id === id)) ?? [];
if (unknown.length) {
  console.error(`[celeriac] bench: unknown section(s) ${unknown.join(", ")}; known: ${SECTIONS.map((s) => s.id).join(", ")}`);
  process.exit(2);
}
const chosen = SECTIONS.filter((s) => !only || only.includes(s.id));
const command = `npm run bench${args.length ? ` -- ${args.join(" ")}` : ""}`;
const bench = import.meta.dirname;
const tmp = mkdtempSync(join(tmpdir(), "celeriac-bench-"));

function runSection(file: string, out: string): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(bench, file), ...(QUICK ? ["--quick"] : []), "--json", out], {
      stdio: ["ignore", "inherit", "inherit"],
    });
    const timer = setTimeout(() => {
      note(`${file} ran past ${SECTION_LIMIT_MS / 60_000} min; stopping it`);
      child.kill("SIGTERM");
    }, SECTION_LIMIT_MS);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve(code ?? 1);
    });
  });
}

const results = new Map<string, SectionResult>();
let failed = 0;
const started = Date.now();
for (const s of chosen) {
  note(`section ${s.title}`);
  const out = join(tmp, `${s.id}.json`);
  const code = await runSection(s.file, out);
  if (code !== 0 || !existsSync(out)) {
    failed++;
    note(`section ${s.id} failed (exit ${code})`);
    continue;
  }
  results.set(s.id, JSON.parse(readFileSync(out, "utf8")) as SectionResult);
}
rmSync(tmp, { recursive: true, force: true });

// RESULTS.md: one block per section between markers, so a partial run keeps the other blocks.
const path = join(bench, "RESULTS.md");
const previous = existsSync(path) ? readFileSync(path, "utf8") : "";
const block = (id: string) => new RegExp(`<!-- section:${id} -->[\\s\\S]*?<!-- /section:${id} -->`);
const date = new Date().toISOString().replace(/\.\d+Z$/, "Z");
const blocks = SECTIONS.map((s) => {
  const r = results.get(s.id);
  if (r) {
    return `<!-- section:${s.id} -->\n_Measured ${date} with \`${command}\`._\n\n${r.markdown.trim()}\n<!-- /section:${s.id} -->`;
  }
  return previous.match(block(s.id))?.[0] ?? `<!-- section:${s.id} -->\n## ${s.title}\n\nNot run yet.\n<!-- /section:${s.id} -->`;
});
const git = (...a: string[]) => spawnSync("git", a, { cwd: bench, encoding: "utf8" }).stdout?.trim() ?? "";
const head = git("rev-parse", "--short", "HEAD") || "unknown";
const dirty = git("status", "--porcelain", "--", "src", "routes", "tasks", "wrangler.jsonc", "package.json") !== "";
const header = `# celeriac benchmarks

Every figure below comes from a run of \`npm run bench\` on the machine named here; nothing is
estimated unless it says so. The machine is shared and noisy (other work runs on it at the same
time), so comparisons are made side by side within one run, alternating the systems compared, and
absolute figures move from run to run. Benchmarks are never tests: \`npm test\` asserts no times.

- Machine: ${machine()}
- Last run: ${date} (\`${command}\`, ${((Date.now() - started) / 1000).toFixed(0)} s), code at commit ${head}${dirty ? " with uncommitted changes in src/, routes/, tasks/ or the config" : ""}
- Commands: \`npm run bench\` (all), \`npm run bench -- --quick\` (N = 100 only, fewer iterations),
  \`npm run bench -- --only noon,burst,relay,size,growth,public,profile\` (some sections; the others keep their last figures)
- Redis: the real one at 127.0.0.1:6379, logical db ${process.env.BENCH_REDIS_DB ?? 13} (\`BENCH_REDIS_DB\`), emptied of the benches' keys afterwards
`;
writeFileSync(path, `${header}\n${blocks.join("\n\n")}\n`);
const charts: string[] = [];
for (const r of results.values()) {
  const d = r.data as { svg?: string; svgFile?: string } | undefined;
  if (d?.svg && d.svgFile) {
    writeFileSync(join(bench, d.svgFile), d.svg);
    charts.push(`bench/${d.svgFile}`);
  }
}
note(`wrote ${path}${charts.length ? ` and ${charts.join(", ")}` : ""}`);
process.exit(failed ? 1 : 0);
