/**
 * Where a task's CPU goes in workerd: a V8 CPU profile (workerd's `--inspector-addr`, the DevTools
 * protocol's Profiler) while tasks are enqueued and delivered one at a time, attributed to the
 * modules of the bundle (an unminified `wrangler deploy --dry-run` build, whose `// path` comments
 * mark each module) and to celeriac's own code (src/, routes/, tasks/).
 *   node bench/profile.ts [--quick] [--json out.json]
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, ROOT } from "../dev/stack.ts";
import { WORKERD, workerdConfig, wranglerConfig } from "../dev/workerd-serve.ts";
import {
  BENCH_DB,
  benchRedis,
  benchRedisUrl,
  benchStack,
  checkBenchDb,
  deleteKeys,
  emit,
  ms,
  note,
  QUICK,
  type SectionResult,
  sleep,
  startProvider,
  table,
} from "./lib.ts";
import { taskCpu } from "./task-cpu.ts";

const TASKS = QUICK ? 100 : 300;
const headers = { authorization: "Bearer celeriac-dev-key-change-me", "content-type": "application/json" };

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** A DevTools-protocol session over the inspector's WebSocket. */
async function inspect(addr: string) {
  const targets = (await (await fetch(`http://${addr}/json`)).json()) as { webSocketDebuggerUrl: string }[];
  const ws = new WebSocket(targets[0]!.webSocketDebuggerUrl);
  await new Promise((ok, fail) => ((ws.onopen = ok), (ws.onerror = fail)));
  let seq = 0;
  const waiting = new Map<number, (r: unknown) => void>();
  ws.onmessage = (e) => {
    const m = JSON.parse(String(e.data)) as { id?: number; result?: unknown };
    if (m.id !== undefined) waiting.get(m.id)?.(m.result);
  };
  const send = <T>(method: string, params: Record<string, unknown> = {}) =>
    new Promise<T>((ok) => {
      const id = ++seq;
      waiting.set(id, ok as (r: unknown) => void);
      ws.send(JSON.stringify({ id, method, params }));
    });
  return { send, close: () => ws.close() };
}

/** Module of each line of an unminified esbuild bundle, from its `// path` comments. */
function moduleOfLine(code: string): (line: number) => string {
  const marks: [number, string][] = [];
  code.split("\n").forEach((l, i) => {
    const m = /^\/\/ ((?:node_modules|src|routes|tasks)\/\S+)$/.exec(l.trim());
    if (m) marks.push([i, m[1]!]);
  });
  return (line) => {
    let lo = 0,
      hi = marks.length - 1,
      found = "(bundle prelude)";
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (marks[mid]![0] <= line) (found = marks[mid]![1]), (lo = mid + 1);
      else hi = mid - 1;
    }
    return found;
  };
}

const groupOf = (module: string, url: string) => {
  if (!url) return "V8 / workerd (GC, natives, idle)";
  if (/^(src|routes|tasks)\//.test(module)) return "celeriac (src/, routes/, tasks/)";
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(module)?.[1];
  return pkg ?? module;
};

export async function runProfile(): Promise<SectionResult> {
  process.env.REDIS_URL = benchRedisUrl();
  const raw = benchRedis();
  await checkBenchDb(raw, ["celeriac:", "bull:celeriac-bench-"]);
  const stack = await benchStack("workerd-serve", { rateLimit: 0 });
  const provider = await startProvider(0);
  const dir = mkdtempSync(join(tmpdir(), "celeriac-profile-"));
  let child: ReturnType<typeof spawn> | undefined;
  try {
    note("profile: workerd CPU per task, before / after / floor");
    const cpu = await taskCpu(stack, provider);
    note("profile: an unminified deploy bundle in workerd serve, with --inspector-addr");
    const r = spawnSync(
      process.execPath,
      [join(ROOT, "node_modules/wrangler/bin/wrangler.js"), "deploy", "--dry-run", "--outdir", dir, "--minify=false"],
      {
        cwd: ROOT,
        encoding: "utf8",
        env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" },
      },
    );
    if (r.status !== 0) throw new Error(`[celeriac] bench: bundle failed: ${r.stderr}`);
    const file = readdirSync(dir).find((f) => f.endsWith(".js"))!;
    const port = await freePort();
    const inspector = `127.0.0.1:${await freePort()}`;
    const url = `http://127.0.0.1:${port}`;
    const { compatibilityDate, vars } = wranglerConfig();
    const env = { ...vars, ...stack.env, CELERIAC_PUBLIC_URL: url };
    const config = join(dir, "config.capnp");
    writeFileSync(config, workerdConfig({ file }, port, Object.keys(env), compatibilityDate));
    child = spawn(WORKERD, ["serve", config, `--inspector-addr=${inspector}`], { env: { ...process.env, ...env }, stdio: "ignore" });
    for (let i = 0; i < 100; i++) {
      try {
        if ((await fetch(`${url}/healthz`)).ok) break;
      } catch {
        await sleep(100);
      }
    }
    const one = async (i: number) => {
      const res = await fetch(`${url}/v1/tasks/webhook`, {
        method: "POST",
        headers,
        body: JSON.stringify({ payload: { url: `${provider.url}/n/p${i}`, body: { json: { i } } } }),
      });
      await res.arrayBuffer();
      await provider.waitFor([`p${i}`], 10_000);
    };
    for (let i = 0; i < 30; i++) await one(-1 - i); // warm: JIT, script SHAs, sockets
    const dbg = await inspect(inspector);
    await dbg.send("Profiler.enable");
    await dbg.send("Profiler.setSamplingInterval", { interval: 100 });
    await dbg.send("Profiler.start");
    for (let i = 0; i < TASKS; i++) await one(i);
    await sleep(300); // the last delivery's outcome write
    const { profile } = await dbg.send<{ profile: Profile }>("Profiler.stop");
    dbg.close();

    const line = moduleOfLine(readFileSync(join(dir, file), "utf8"));
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const self = new Map<number, number>();
    for (const [i, id] of profile.samples.entries()) self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
    const fns = new Map<string, number>();
    const groups = new Map<string, number>();
    let busy = 0;
    for (const [id, t] of self) {
      const n = byId.get(id)!;
      const f = n.callFrame;
      if (f.functionName === "(idle)" || f.functionName === "(program)") continue;
      busy += t;
      const module = f.url ? line(f.lineNumber) : "";
      const g = groupOf(module, f.url);
      groups.set(g, (groups.get(g) ?? 0) + t);
      const key = `\`${f.functionName || "(anonymous)"}\` ${module || f.functionName}`;
      fns.set(key, (fns.get(key) ?? 0) + t);
    }
    const per = (t: number) => ms(t / TASKS);
    const top = [...fns].sort((a, b) => b[1] - a[1]).slice(0, 15);
    const own = [...fns]
      .filter(([k]) => / (src|routes|tasks)\//.test(k))
      .sort((a, b) => b[1] - a[1])
      .slice(0, 10);
    const markdown = `## 7. Where a task's CPU goes in workerd

A V8 CPU profile (sampling every 100 µs) of workerd serving an unminified build of the deploy bundle,
taken over the DevTools protocol (\`workerd serve --inspector-addr\`) while ${TASKS} \`webhook\` tasks were
enqueued and delivered one at a time (after 30 warm-up tasks): enqueue, the broker's delivery, the
call to a provider that answers at once, the outcome. Self time per task, idle excluded:
${per(busy)} in all. The profiler's own overhead inflates these figures; the shares are what count.

${table(
  ["where", "self time per task", "share"],
  [...groups].sort((a, b) => b[1] - a[1]).map(([g, t]) => [g, per(t), `${((t / busy) * 100).toFixed(1)} %`]),
)}

The top functions (self time):

${table(
  ["function, module", "self time per task", "share"],
  top.map(([k, t]) => [k, per(t), `${((t / busy) * 100).toFixed(1)} %`]),
)}

celeriac's own functions (self time):

${table(
  ["function, module", "self time per task", "share"],
  own.map(([k, t]) => [k, per(t), `${((t / busy) * 100).toFixed(1)} %`]),
)}

${cpu.markdown}`;
    return {
      id: "profile",
      title: "Where a task's CPU goes",
      markdown,
      data: { groups: [...groups], top, own, cpu: { ...cpu, markdown: undefined } },
    };
  } finally {
    if (child && child.exitCode === null) child.kill("SIGTERM");
    await provider.close();
    await stack.close();
    rmSync(dir, { recursive: true, force: true });
    await deleteKeys(raw, "celeriac:*");
    raw.disconnect();
    note(`profile: done (Redis db ${BENCH_DB} cleaned)`);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await emit(await runProfile());
