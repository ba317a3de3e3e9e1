// Item 4 of issue 15, on Node (@hono/node-server): a delivery declaring a huge body is answered
// before the body is read: an unsigned one at once (401), a signed one when it declares or passes
// the cap (413). Each request sends only the first megabyte of what it declares and holds the
// connection open, so an answer at all shows the server did not wait for (or read) the rest.
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serveNode } from "../src/node.ts";
import { sign, stack } from "./helpers/api.ts";

let server: { url: string; close: () => Promise<void> };
const env: Record<string, string> = {};
beforeAll(async () => {
  Object.assign(env, stack().env);
  server = await serveNode({ port: 0, env: () => env });
  env.CELERIAC_PUBLIC_URL = server.url;
});
afterAll(() => server?.close());

/** Sends the head and the first `sent` bytes, then waits for the status line without sending more. */
function partial(head: Record<string, string>, path: string, sent: number, chunked = false): Promise<string> {
  const u = new URL(server.url);
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(u.port), u.hostname, () => {
      const lines = Object.entries(head)
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join("");
      sock.write(`POST ${path} HTTP/1.1\r\nHost: ${u.host}\r\n${lines}\r\n`);
      const data = Buffer.alloc(sent, 0x61);
      sock.write(chunked ? Buffer.concat([Buffer.from(`${sent.toString(16)}\r\n`), data, Buffer.from("\r\n")]) : data);
    });
    let got = "";
    sock.on("data", (d) => {
      got += d;
      if (got.includes("\r\n")) {
        resolve(got.split("\r\n")[0]!);
        sock.destroy();
      }
    });
    sock.on("error", reject);
  });
}

describe("Node reads no delivery body it will not use", () => {
  it("an unsigned delivery declaring 50 MB: 401 before its body arrives", async () => {
    const status = await partial({ "content-type": "application/json", "content-length": "50000000" }, "/qstash/deliver", 1_000_000);
    expect(status).toBe("HTTP/1.1 401 Unauthorized");
  });

  it("a forged signature declaring 50 MB: 401 the same way", async () => {
    const signature = sign({ key: "sig_not_the_key", url: `${server.url}/qstash/deliver`, body: "{}" });
    const status = await partial(
      { "content-type": "application/json", "content-length": "50000000", "upstash-signature": signature },
      "/qstash/deliver",
      1_000_000,
    );
    expect(status).toBe("HTTP/1.1 401 Unauthorized");
  });

  it("a validly signed delivery declaring 50 MB: 413 before its body arrives", async () => {
    const signature = sign({ key: env.QSTASH_CURRENT_SIGNING_KEY!, url: `${server.url}/qstash/deliver`, body: "{}" });
    const status = await partial(
      { "content-type": "application/json", "content-length": "50000000", "upstash-signature": signature },
      "/qstash/deliver",
      1_000_000,
    );
    expect(status).toBe("HTTP/1.1 413 Payload Too Large");
  });

  it("a validly signed chunked delivery that declares nothing: 413 once it passes the cap", async () => {
    const signature = sign({ key: env.QSTASH_CURRENT_SIGNING_KEY!, url: `${server.url}/qstash/deliver`, body: "{}" });
    const status = await partial(
      { "content-type": "application/json", "transfer-encoding": "chunked", "upstash-signature": signature },
      "/qstash/deliver",
      3_500_000,
      true,
    );
    expect(status).toBe("HTTP/1.1 413 Payload Too Large");
  });

  it("an enqueue declaring 50 MB: 413 before its body arrives", async () => {
    const status = await partial(
      {
        "content-type": "application/json",
        "content-length": "50000000",
        authorization: `Bearer ${env.CELERIAC_API_KEYS!.split(",")[0]!.split(":")[1]}`,
      },
      "/v1/tasks/send-email",
      1_000_000,
    );
    expect(status).toBe("HTTP/1.1 413 Payload Too Large");
  });
});
