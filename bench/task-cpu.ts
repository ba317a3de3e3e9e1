/**
 * workerd CPU per task, side by side in one run: celeriac's deploy bundle at a baseline commit
 * (before this round of CPU work), the bundle of this checkout, and the floor (a Worker that only
 * makes the same HTTP exchanges, bench/fixtures/floor-worker.ts). Each runs in its own `workerd
 * serve` against one stack; `webhook` tasks are enqueued and delivered one at a time, the Workers
 * taking turns round by round; CPU of each workerd process is read from /proc.
 *   node bench/task-cpu.ts [--quick]      (baseline: BENCH_BASELINE_REF, default below)
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, ROOT } from "../dev/stack.ts";
import { bundleWorker, WORKERD, workerdConfig, wranglerConfig } from "../dev/workerd-serve.ts";
import { type benchStack, median, ms, note, type Provider, procStat, QUICK, sleep, table } from "./lib.ts";

/** The last commit before issue 13's CPU work of 2026-11-29 (bundle cuts, Redis replies, body reads). */
export const BASELINE_REF = process.env.BENCH_BASELINE_REF ?? "4f39b43";
const ROUNDS = QUICK ? 3 : 8;
const PER_ROUND = QUICK ? 50 : 100;
const cpuMs = (pid: number) => procStat(pid).ms;
/** The deploy bundle of celeriac at `ref`: checked out and installed in a temp dir, built once, cached. */
function bundleAt(ref: string): string {
  const cache = join(ROOT, "node_modules/.cache/celeriac-bench", `worker-${ref}.js`);
  if (existsSync(cache)) return cache;
  note(`task-cpu: building the deploy bundle at ${ref} (git archive, npm ci, wrangler; once)`);
  const dir = mkdtempSync(join(tmpdir(), `celeriac-${ref}-`));
  try {
    const tar = spawnSync("bash", ["-c", `git -C "${ROOT}" archive "${ref}" | tar -x -C "${dir}"`], { encoding: "utf8" });
    if (tar.status !== 0) throw new Error(`[celeriac] bench: git archive ${ref} failed: ${tar.stderr}`);
    const ci = spawnSync("npm", ["ci", "--no-audit", "--no-fund", "--ignore-scripts"], { cwd: dir, encoding: "utf8", timeout: 600_000 });
    if (ci.status !== 0) throw new Error(`[celeriac] bench: npm ci at ${ref} failed: ${ci.stderr}`);
    mkdirSync(join(cache, ".."), { recursive: true });
    const built = bundleWorker(dir);
    copyFileSync(join(built.dir, built.file), cache);
    rmSync(built.dir, { recursive: true, force: true });
    return cache;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Served {
  url: string;
  pid: number;
}

export interface TaskCpu {
  baseline: number[];
  current: number[];
  floor: number[];
  /** The floor's two halves: a request with two subrequests (enqueue), one with three (delivery). */
  floorEnqueue: number[];
  floorDelivery: number[];
  ref: string;
  markdown: string;
}

/** Runs the comparison on `stack` (the webhook task may call `provider`). */
export async function taskCpu(stack: Awaited<ReturnType<typeof benchStack>>, provider: Provider): Promise<TaskCpu> {
  const baselineFile = bundleAt(BASELINE_REF);
  const currentBundle = bundleWorker();
  const floorBundle = bundleWorker(ROOT, [
    "--name",
    "floor",
    "--compatibility-date",
    "2026-11-01",
    join(ROOT, "bench/fixtures/floor-worker.ts"),
  ]);
  const children: ChildProcess[] = [];
  const dirs: string[] = [];
  const serve = async (bundle: string, extraEnv: Record<string, string>): Promise<Served> => {
    const dir = mkdtempSync(join(tmpdir(), "celeriac-taskcpu-serve-"));
    dirs.push(dir);
    copyFileSync(bundle, join(dir, "worker.js"));
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const { compatibilityDate, vars } = wranglerConfig();
    const env = { ...vars, ...stack.env, CELERIAC_PUBLIC_URL: url, ...extraEnv };
    writeFileSync(join(dir, "config.capnp"), workerdConfig({ file: "worker.js" }, port, Object.keys(env), compatibilityDate));
    const child = spawn(WORKERD, ["serve", join(dir, "config.capnp")], { cwd: dir, env: { ...process.env, ...env }, stdio: "ignore" });
    children.push(child);
    for (let i = 0; i < 100; i++) {
      try {
        if ((await fetch(`${url}/`)).status < 500) break;
      } catch {
        await sleep(100);
      }
    }
    return { url, pid: child.pid! };
  };
  const headers = { authorization: "Bearer celeriac-dev-key-change-me", "content-type": "application/json" };
  let n = 0;
  const task = async (w: Served) => {
    const i = `cpu${n++}`;
    const res = await fetch(`${w.url}/v1/tasks/webhook`, {
      method: "POST",
      headers,
      body: JSON.stringify({ payload: { url: `${provider.url}/n/${i}`, body: { json: { i } } } }),
    });
    if (res.status !== 202) throw new Error(`[celeriac] bench: enqueue answered ${res.status}: ${await res.text()}`);
    if (!(await provider.waitFor([i], 10_000))) throw new Error(`[celeriac] bench: task ${i} was not delivered`);
  };
  const floorOnce = async (w: Served, k: number) => {
    const res = await fetch(`${w.url}/?n=${k}`, { method: "POST", headers, body: JSON.stringify({ payload: { i: n++ } }) });
    await res.arrayBuffer();
  };
  const measure = async (w: Served, count: number, one: () => Promise<void>) => {
    const c0 = cpuMs(w.pid);
    for (let i = 0; i < count; i++) await one();
    await sleep(100); // the last outcome write
    return (cpuMs(w.pid) - c0) / count;
  };
  try {
    const [baseline, current, floor] = [
      await serve(baselineFile, {}),
      await serve(join(currentBundle.dir, currentBundle.file), {}),
      await serve(join(floorBundle.dir, floorBundle.file), { TARGET: provider.url }),
    ];
    const out = { baseline: [] as number[], current: [] as number[], floorEnqueue: [] as number[], floorDelivery: [] as number[] };
    const steps: [keyof typeof out, () => Promise<number>][] = [
      ["baseline", () => measure(baseline, PER_ROUND, () => task(baseline))],
      ["current", () => measure(current, PER_ROUND, () => task(current))],
      ["floorEnqueue", () => measure(floor, PER_ROUND, () => floorOnce(floor, 2))],
      ["floorDelivery", () => measure(floor, PER_ROUND, () => floorOnce(floor, 3))],
    ];
    for (const [, step] of steps) await step(); // warm-up: JIT, script SHAs, sockets
    for (let r = 0; r < ROUNDS; r++) {
      for (const [k, step] of r % 2 ? [...steps].reverse() : steps) out[k].push(await step());
    }
    const floorSum = out.floorEnqueue.map((x, i) => x + out.floorDelivery[i]!);
    const b = median(out.baseline);
    const c = median(out.current);
    const f = median(floorSum);
    const each = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(", ");
    const markdown = `### workerd CPU per task: before, after, and the floor

${ROUNDS} rounds of ${PER_ROUND} \`webhook\` tasks, enqueued and delivered one at a time, for each of three
Workers in its own \`workerd serve\` on the same stack, taking turns round by round; CPU of each
workerd process (user + system) from /proc, whose 10 ms ticks make one round's figure good to
${ms(10 / PER_ROUND)}. "Before" is the deploy bundle at commit ${BASELINE_REF} (built from that commit
with its own locked dependencies), "after" this checkout's. The floor is a Worker that does only
the HTTP exchanges a task needs, and nothing else (bench/fixtures/floor-worker.ts): one request
making two subrequests (an enqueue: Redis, QStash) plus one making three (a delivery: claim, the
provider, the outcome), each a small JSON POST. Sequential tasks cost more per task than a burst
(where workerd serves many requests per wake-up), so these figures sit above the burst's.

${table(
  ["Worker", "workerd CPU per task, median", "rounds", "÷ floor"],
  [
    [`celeriac before (${BASELINE_REF})`, ms(b), each(out.baseline), `${(b / f).toFixed(2)}×`],
    ["celeriac after (this commit)", ms(c), each(out.current), `${(c / f).toFixed(2)}×`],
    [
      "floor: the same HTTP exchanges, nothing else",
      ms(f),
      `${ms(median(out.floorEnqueue))} (request + 2 subrequests) + ${ms(median(out.floorDelivery))} (request + 3)`,
      "1×",
    ],
  ],
)}

celeriac's own share per task (after − floor): ${ms(c - f)}; before: ${ms(b - f)}.
`;
    return { ...out, floor: floorSum, ref: BASELINE_REF, markdown };
  } finally {
    for (const ch of children) if (ch.exitCode === null) ch.kill("SIGTERM");
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    for (const b of [currentBundle, floorBundle]) rmSync(b.dir, { recursive: true, force: true });
  }
}
