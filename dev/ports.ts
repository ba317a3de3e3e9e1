// Ports of the local stack: free ones for tests, and a one-line error naming the part when a
// chosen port is taken (a second `./dev/run dev`, or another program).
import { createServer } from "node:net";

/** The stack's parts, as named in errors and in the banner. */
export const PART_NAMES = {
  bridge: "Upstash-REST bridge",
  sink: "mail sink",
  broker: "QStash-compatible broker",
  worker: "Worker",
  turnstile: "Turnstile stand-in",
  site: "demo pages",
} as const;

export type Part = keyof typeof PART_NAMES;

/** A port the stack needs is taken. */
export class PortInUseError extends Error {
  override name = "PortInUseError";
  readonly part: Part;
  readonly port: number;
  constructor(part: Part, port: number) {
    super(`[celeriac] port ${port} (${PART_NAMES[part]}) is already in use on 127.0.0.1: another dev stack, or another program`);
    this.part = part;
    this.port = port;
  }
}

const isAddrInUse = (err: unknown) =>
  (err as { code?: string })?.code === "EADDRINUSE" || /EADDRINUSE/.test(String((err as Error)?.message ?? err));

/** Resolves when `port` can be bound on 127.0.0.1 (then releases it); else a {@link PortInUseError}. */
export function assertPortFree(part: Part, port: number): Promise<void> {
  if (port === 0) return Promise.resolve();
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once("error", (err) => fail(isAddrInUse(err) ? new PortInUseError(part, port) : err));
    s.listen(port, "127.0.0.1", () => s.close(() => ok()));
  });
}

/** Runs `start`, turning an EADDRINUSE from it into a {@link PortInUseError} for `part`. */
export async function listening<T>(part: Part, port: number, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (err) {
    throw isAddrInUse(err) ? new PortInUseError(part, port) : err;
  }
}

/** A free TCP port on loopback (there is a small race until it is bound again; fine locally). */
export function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => ok(typeof a === "object" && a ? a.port : 0));
    });
  });
}
