// Child processes the stack starts, each in a process group of its own: wrangler starts workerd
// and esbuild, and signalling only the direct child would orphan them. Closing signals the whole
// group and waits until no member is left, so the ports are free when close() resolves.
import { type ChildProcess, spawn } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";

export interface GroupOptions {
  cwd: string;
  /** The child's whole environment (nothing is inherited). */
  env: Record<string, string>;
  /** Copy the child's output to this process's as well as keeping its tail. @default false */
  echo?: boolean;
}

export interface ProcessGroup {
  /** The leader's pid, which is also the group id. */
  pid: number;
  child: ChildProcess;
  /** The last 8 KB of the group's stdout and stderr. */
  output(): string;
  /** True while any process of the group is alive (zombies, which init reaps, do not count). */
  alive(): Promise<boolean>;
  /** SIGTERM to the group, SIGKILL after `graceMs`; resolves once the group is gone. */
  close(graceMs?: number): Promise<void>;
}

// Groups still running when this process exits (a crash, process.exit) are killed on the way out.
const open = new Set<number>();
process.on("exit", () => {
  for (const pid of open) signal(pid, "SIGKILL");
});

function signal(pgid: number, sig: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, sig);
    return true;
  } catch {
    return false; // ESRCH: no process left in the group
  }
}

// The group also holds a watcher that reads a pipe from this process: when this process dies in
// any way (SIGKILL, a test runner's abrupt end), the pipe closes and the watcher kills the group.
// The shell then execs the command, so the leader is the command itself (wrangler, the Deno
// binary), with /dev/null as its stdin.
const WATCHED = 'exec 3<&0 </dev/null; (cat <&3 >/dev/null 2>&1; kill -KILL 0) >/dev/null 2>&1 & exec "$@" 3<&-';

/**
 * Starts `command` as the leader of a new process group, which dies with this process.
 * POSIX only (the stack runs on Linux and macOS).
 */
export function spawnGroup(command: string, args: string[], opts: GroupOptions): ProcessGroup {
  const child = spawn("/bin/sh", ["-c", WATCHED, "celeriac-group", command, ...args], {
    cwd: opts.cwd,
    env: opts.env,
    detached: true,
    stdio: ["pipe", "pipe", "pipe"],
  });
  if (child.pid === undefined) throw new Error(`[celeriac] could not start ${command}`);
  const pid = child.pid;
  open.add(pid);
  let tail = "";
  const keep = (stream: NodeJS.WriteStream) => (d: Buffer) => {
    tail = (tail + d.toString()).slice(-8000);
    if (opts.echo) stream.write(d);
  };
  child.stdout?.on("data", keep(process.stdout));
  child.stderr?.on("data", keep(process.stderr));
  let closing: Promise<void> | undefined;
  const alive = async () => signal(pid, 0) && (process.platform !== "linux" || (await groupMembers(pid)).length > 0);
  return {
    pid,
    child,
    output: () => tail,
    alive,
    close(graceMs = 5_000) {
      closing ??= (async () => {
        signal(pid, "SIGTERM");
        const killAt = Date.now() + graceMs;
        while (await alive()) {
          if (Date.now() > killAt) signal(pid, "SIGKILL");
          await new Promise((r) => setTimeout(r, 50));
        }
        open.delete(pid);
      })();
      return closing;
    },
  };
}

/** Pids of the processes in group `pgid` (Linux /proc; empty elsewhere). */
export async function groupMembers(pgid: number): Promise<number[]> {
  const pids = await readdir("/proc").catch(() => [] as string[]);
  const members: number[] = [];
  for (const p of pids) {
    if (!/^\d+$/.test(p)) continue;
    const stat = await readFile(`/proc/${p}/stat`, "utf8").catch(() => "");
    // Fields after the command (which may hold spaces) start after the last ')': state ppid pgrp.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(fields[2]) === pgid && fields[0] !== "Z") members.push(Number(p));
  }
  return members;
}
