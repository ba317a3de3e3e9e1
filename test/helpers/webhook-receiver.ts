/**
 * A webhook endpoint for the webhook task's tests: a node:http server on 127.0.0.1, port 0, that
 * records every request, checks its Standard Webhooks signature with the official `standardwebhooks`
 * package, and answers from a per-path script (e.g. 503, then 429 with Retry-After, then 200).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";

export interface Receipt {
  method: string;
  /** Path and query as requested. */
  url: string;
  /** Lower-cased names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: string;
  /** "valid", "unsigned", or "invalid: <why>" from `Webhook.verify`. */
  signature: string;
  /** Date.now() when the request finished arriving. */
  at: number;
}

export interface Answer {
  status: number;
  headers?: Record<string, string>;
  body?: string;
  /** Wait this long before answering (to trip the task's timeout). */
  delayMs?: number;
}

export interface WebhookReceiver {
  /** `http://127.0.0.1:<port>` */
  base: string;
  /** Answers requests to `path` (without query) with these, in order; then 200 `{"ok":true}`. */
  script(path: string, answers: Answer[]): void;
  /** Requests received on `path` (without query), oldest first. */
  receipts(path: string): Receipt[];
  close(): Promise<void>;
}

const OK: Answer = { status: 200, headers: { "content-type": "application/json" }, body: '{"ok":true}' };

/** Starts a receiver that verifies signatures with `secret` (`whsec_…`). */
export async function startWebhookReceiver(secret: string): Promise<WebhookReceiver> {
  const webhook = new Webhook(secret);
  const scripts = new Map<string, Answer[]>();
  const seen = new Map<string, Receipt[]>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(", ") : v;
      let signature = "unsigned";
      if (headers["webhook-signature"]) {
        try {
          webhook.verify(body, headers, { jsonParse: false });
          signature = "valid";
        } catch (err) {
          signature = `invalid: ${(err as Error).message}`;
        }
      }
      const path = (req.url ?? "/").split("?")[0]!;
      const list = seen.get(path) ?? [];
      list.push({ method: req.method ?? "", url: req.url ?? "/", headers, body, signature, at: Date.now() });
      seen.set(path, list);
      const answer = scripts.get(path)?.shift() ?? OK;
      setTimeout(() => {
        if (res.destroyed) return;
        res.writeHead(answer.status, answer.headers ?? {});
        res.end(answer.body ?? "");
      }, answer.delayMs ?? 0);
    });
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    script: (path, answers) => void scripts.set(path, [...answers]),
    receipts: (path) => [...(seen.get(path) ?? [])],
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}
