/** One outbound HTTP attempt with node:http(s): exact URL, any method, raw body, real-time timeout. */
import http from "node:http";
import https from "node:https";
import { headerMapFromDistinct } from "./headers.ts";
import type { HeaderMap } from "./types.ts";

export interface AttemptResponse {
  status: number;
  header: HeaderMap;
  body: Buffer;
  latencyMs: number;
}
export interface AttemptFailure {
  error: string;
  timedOut: boolean;
  latencyMs: number;
}
export type AttemptResult = AttemptResponse | AttemptFailure;

export function isResponse(r: AttemptResult): r is AttemptResponse {
  return "status" in r;
}

const MAX_RESPONSE_BYTES = 1 << 20;

export class Outbound {
  // Bounded sockets: thousands of parallel deliveries queue in the agent instead of
  // opening thousands of loopback connections.
  private httpAgent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  private httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 256 });
  private controllers = new Set<AbortController>();

  send(url: string, method: string, headers: Record<string, string | string[]>, body: Buffer, timeoutMs: number): Promise<AttemptResult> {
    const started = performance.now();
    const ac = new AbortController();
    this.controllers.add(ac);
    return new Promise<AttemptResult>((resolve) => {
      let settled = false;
      const done = (r: AttemptResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.controllers.delete(ac);
        resolve(r);
      };
      const fail = (error: string, timedOut = false) => done({ error, timedOut, latencyMs: performance.now() - started });
      const timer = setTimeout(() => {
        fail(`timeout after ${timeoutMs}ms`, true);
        ac.abort();
      }, timeoutMs);
      let target: URL;
      try {
        target = new URL(url);
      } catch {
        fail(`invalid url ${url}`);
        return;
      }
      const isHttps = target.protocol === "https:";
      const req = (isHttps ? https : http).request(
        target,
        {
          method,
          headers: body.length ? { ...headers, "Content-Length": String(body.length) } : headers,
          agent: isHttps ? this.httpsAgent : this.httpAgent,
          signal: ac.signal,
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on("data", (c: Buffer) => {
            size += c.length;
            if (size <= MAX_RESPONSE_BYTES) chunks.push(c);
          });
          res.on("end", () =>
            done({
              status: res.statusCode ?? 0,
              header: headerMapFromDistinct(res.headersDistinct),
              body: Buffer.concat(chunks),
              latencyMs: performance.now() - started,
            }),
          );
          res.on("error", (e) => fail(e.message));
        },
      );
      req.on("error", (e) => fail(ac.signal.aborted && !settled ? "aborted" : e.message));
      req.end(body.length ? body : undefined);
    });
  }

  /** Aborts everything in flight (the broker is closing) and drops idle sockets. */
  close(): void {
    for (const ac of this.controllers) ac.abort();
    this.controllers.clear();
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}
