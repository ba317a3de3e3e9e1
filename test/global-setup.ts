// Starts the local stack once for the whole run: the Upstash-REST bridge (over the real Redis
// when one answers), the mail sink, the QStash-compatible broker and the Worker in workerd.
import type { TestProject } from "vitest/node";
import { startStack, type Stack } from "../dev/stack.ts";

/** Broker time scale for tests: QStash's 12 s first backoff takes 0.6 s. */
export const TIME_SCALE = 0.05;

let stack: Stack | undefined;

export async function setup(project: TestProject) {
  stack = await startStack({
    ports: { bridge: 0, sink: 0, broker: 0, worker: 0 },
    timeScale: TIME_SCALE,
    // The webhook tests' receiver listens on loopback; only this exact host is let through.
    vars: { CELERIAC_WEBHOOK_ALLOW_HOSTS: "127.0.0.1" },
  });
  console.log(
    `[celeriac] test stack: Redis bridge ${stack.bridge.url} (${stack.bridge.backend === "redis" ? "over the real Redis" : "embedded in-memory Redis"}), ` +
      `mail sink ${stack.sink.url}, broker ${stack.broker.url}, Worker (workerd) ${stack.worker.url}`,
  );
  project.provide("stack", {
    env: stack.env,
    worker: stack.worker.url,
    sink: stack.sink.url,
    broker: stack.broker.url,
    redisBackend: stack.bridge.backend,
    timeScale: TIME_SCALE,
  });
}

export async function teardown() {
  await stack?.close();
}

declare module "vitest" {
  export interface ProvidedContext {
    stack: {
      env: Record<string, string>;
      worker: string;
      sink: string;
      broker: string;
      redisBackend: "redis" | "memory";
      timeScale: number;
    };
  }
}
