// The stack as a tool: closing it leaves no process and no bound port behind (wrangler's workerd
// and esbuild, the Deno binary), start-up fails fast with the reason, a busy port is named, and
// the tests' data stays out of the dev stack's keys.
import { spawn } from "node:child_process";
import { readdir, readFile, readlink } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { Redis } from "@upstash/redis";
import { describe, expect, it } from "vitest";
import { denoBinary } from "../dev/deno-bin.ts";
import { freePort, PortInUseError } from "../dev/ports.ts";
import { groupMembers } from "../dev/process-group.ts";
import { startApp, startStack } from "../dev/stack.ts";
import { call, keyPrefix, stack, until } from "./helpers/api.ts";

const portOf = (url: string) => Number(new URL(url).port);

/** Inodes of the sockets listening on `port` (Linux /proc/net/tcp, tcp6; state 0A is LISTEN). */
async function listeners(port: number): Promise<Set<string>> {
  const hex = port.toString(16).toUpperCase().padStart(4, "0");
  const rows = (await Promise.all(["tcp", "tcp6"].map((f) => readFile(`/proc/net/${f}`, "utf8").catch(() => "")))).join("\n");
  const inodes = new Set<string>();
  for (const line of rows.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f[1]?.endsWith(`:${hex}`) && f[3] === "0A") inodes.add(f[9]!);
  }
  return inodes;
}

/** Whether process `pid` holds one of these sockets. */
async function holds(pid: number | "self", inodes: Set<string>): Promise<boolean> {
  const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
  for (const fd of fds) {
    const link = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => "");
    if (inodes.has(link.replace(/^socket:\[(\d+)\]$/, "$1"))) return true;
  }
  return false;
}

/**
 * Everything the group started is gone, and neither this process nor the group still listens on
 * the ports. (Whether the port is free is not asked: on a shared machine another program may
 * take a freed port at once.)
 */
async function expectGone(pid: number, ports: number[]) {
  expect(await groupMembers(pid)).toEqual([]);
  for (const port of ports) expect(await holds("self", await listeners(port)), `port ${port} still held`).toBe(false);
}

describe("closing", () => {
  it("a whole stack stops wrangler, workerd and esbuild, and frees its four ports", async () => {
    const s = await startStack({ ports: { bridge: 0, sink: 0, broker: 0, worker: 0 } });
    // wrangler and workerd: the processes a plain child.kill() used to orphan.
    const names = await Promise.all((await groupMembers(s.worker.pid)).map((pid) => readFile(`/proc/${pid}/comm`, "utf8").catch(() => "")));
    expect(names.map((n) => n.trim())).toContain("workerd");
    const ports = [s.worker.url, s.broker.url, s.bridge.url, s.sink.url].map(portOf);
    await s.close();
    await expectGone(s.worker.pid, ports);
  }, 120_000);

  it.each(["node", "deno"] as const)(
    "the %s app runs as the real binary (no wrapper) and stops with its process group",
    async (runtime) => {
      const port = await freePort();
      const app = await startApp(runtime, port, { ...stack().env, CELERIAC_PUBLIC_URL: `http://127.0.0.1:${port}` });
      expect(await groupMembers(app.pid)).toContain(app.pid);
      const exe = await readlink(`/proc/${app.pid}/exe`);
      expect(exe).toBe(runtime === "deno" ? denoBinary() : process.execPath);
      await app.close();
      await expectGone(app.pid, [port]);
    },
    60_000,
  );

  it("an app dies with the process that started it, even one killed with SIGKILL", async () => {
    const port = await freePort();
    const env = { ...stack().env, CELERIAC_PUBLIC_URL: `http://127.0.0.1:${port}` };
    const script = `
      import { startApp } from ${JSON.stringify(new URL("../dev/stack.ts", import.meta.url).href)};
      const app = await startApp("node", ${port}, JSON.parse(process.env.APP_ENV));
      console.log(app.pid);
      setInterval(() => {}, 1000);`;
    const parent = spawn(process.execPath, ["--input-type=module", "-e", script], {
      env: { ...process.env, APP_ENV: JSON.stringify(env) },
      stdio: ["ignore", "pipe", "inherit"],
    });
    const pid = await new Promise<number>((ok) => parent.stdout.once("data", (d: Buffer) => ok(Number(String(d).trim()))));
    expect(await groupMembers(pid)).toContain(pid);
    parent.kill("SIGKILL");
    await until("the orphaned group to be gone", async () => ((await groupMembers(pid)).length === 0 ? true : undefined));
    await expectGone(pid, [port]);
  }, 60_000);
});

describe("start-up", () => {
  it("fails with /healthz's reason, naming the variable", async () => {
    const port = await freePort();
    const err = await startApp("node", port, { ...stack().env, CELERIAC_API_KEYS: "dev:short" }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/^\[celeriac\] the Node app is unhealthy: CELERIAC_API_KEYS must be/);
  }, 60_000);

  it("prints the app's output when it exits before it is healthy", async () => {
    const port = await freePort();
    const err = await startApp("node", port, { ...stack().env, NODE_OPTIONS: "--require ./no-such-preload.cjs" }).catch((e: Error) => e);
    expect((err as Error).message).toMatch(
      /^\[celeriac\] the Node app exited \(1\) before it was healthy; its output:\n[\s\S]*no-such-preload/,
    );
  }, 60_000);

  it("names the dependency that is down", async () => {
    const port = await freePort();
    const dead = `http://127.0.0.1:${await freePort()}`;
    const err = await startApp("node", port, { ...stack().env, QSTASH_URL: dead }).catch((e: Error) => e);
    expect((err as Error).message).toMatch(/^\[celeriac\] the Node app is unhealthy: qstash: /);
  }, 60_000);

  it("names the part and the port when a port is taken, before starting anything", async () => {
    const taken: Server = createServer();
    await new Promise<void>((r) => taken.listen(0, "127.0.0.1", r));
    const port = (taken.address() as { port: number }).port;
    const err = await startStack({ ports: { bridge: 0, sink: port, broker: 0, worker: 0 } })
      .catch((e: Error) => e)
      .finally(() => taken.close());
    expect(err).toBeInstanceOf(PortInUseError);
    expect((err as Error).message).toBe(
      `[celeriac] port ${port} (mail sink) is already in use on 127.0.0.1: another dev stack, or another program`,
    );
  });
});

describe("test data", () => {
  it("lives under the run's own key prefix, never under the dev stack's", async () => {
    expect(keyPrefix()).toMatch(/^celeriac-test-\d+-[0-9a-f]+:$/);
    const r = await call("POST", "/v1/tasks/send-email", {
      payload: { to: "ada@celeriac.dev", subject: "isolation", text: "x" },
      delay: "1h",
    });
    expect(r.status).toBe(202);
    const redis = new Redis({ url: stack().env.UPSTASH_REDIS_REST_URL!, token: stack().env.UPSTASH_REDIS_REST_TOKEN! });
    expect(await redis.exists(`${keyPrefix()}t:${r.body.id}`)).toBe(1);
    expect(await redis.exists(`celeriac:t:${r.body.id}`)).toBe(0);
    expect(await redis.keys(`celeriac:*${r.body.id}*`)).toEqual([]);
    await call("DELETE", `/v1/tasks/${r.body.id}`);
  });
});
