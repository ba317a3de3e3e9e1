// Redirects followed hop by hop through a checked fetch (`followChecked`, what the Deno entry
// uses: Deno's own fetch would follow a redirect to any address). Real HTTP servers on loopback;
// the first is allow-listed, the second only where a test says so.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkedUrl, followChecked, refusalOf } from "../src/outbound.ts";

interface Seen {
  method: string;
  url: string;
  authorization?: string;
  body: string;
}
async function server(answer: (req: http.IncomingMessage) => { status: number; location?: string }) {
  const seen: Seen[] = [];
  const s = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      seen.push({
        method: req.method!,
        url: req.url!,
        body: Buffer.concat(chunks).toString(),
        ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
      });
      const a = answer(req);
      res.writeHead(a.status, a.location ? { location: a.location } : {}).end("ok");
    });
  });
  await new Promise<void>((ok) => s.listen(0, "127.0.0.1", ok));
  return {
    base: `http://127.0.0.1:${(s.address() as AddressInfo).port}`,
    seen,
    close: () => new Promise<void>((ok) => s.close(() => ok())),
  };
}

let a: Awaited<ReturnType<typeof server>>;
let b: Awaited<ReturnType<typeof server>>;
beforeAll(async () => {
  b = await server(() => ({ status: 200 }));
  a = await server((req) => {
    const to = new URL(req.url!, "http://x").searchParams.get("to");
    const status = Number(new URL(req.url!, "http://x").searchParams.get("status") ?? 302);
    return to ? { status, location: to } : { status: 200 };
  });
});
afterAll(async () => {
  await a?.close();
  await b?.close();
});
/** A fetch that checks each URL against the allow-list first, as the Deno entry's does. */
const checked = (allow: string[]) =>
  ((input: RequestInfo | URL, init?: RequestInit) => (checkedUrl(input, allow), fetch(input, init))) as typeof fetch;
const hostOf = (base: string) => new URL(base).host;

describe("followChecked", () => {
  it("refuses a redirect to a target the guard refuses, without calling it", async () => {
    const err = await followChecked(checked([hostOf(a.base)]), `${a.base}/r?to=${encodeURIComponent(`${b.base}/secret`)}`).then(
      (r) => `answered ${r.status}`,
      (e: unknown) => e,
    );
    expect(refusalOf(err)?.message ?? `let through: ${String(err)}`).toMatch(/loopback/);
    expect(b.seen.filter((s) => s.url === "/secret")).toHaveLength(0);
  });

  it("follows an allowed redirect as fetch would: 303 turns a POST into a GET, credentials stay at their origin", async () => {
    const f = checked([hostOf(a.base), hostOf(b.base)]);
    const r = await followChecked(f, `${a.base}/r?status=303&to=${encodeURIComponent(`${b.base}/landed`)}`, {
      method: "POST",
      body: "payload",
      headers: { authorization: "Bearer s3cret", "content-type": "text/plain" },
    });
    expect(r.status).toBe(200);
    expect(a.seen.at(-1)).toMatchObject({ method: "POST", body: "payload", authorization: "Bearer s3cret" });
    expect(b.seen.at(-1)).toEqual({ method: "GET", url: "/landed", body: "" });
    // 307 keeps the method and body.
    await followChecked(f, `${a.base}/r?status=307&to=${encodeURIComponent(`${b.base}/kept`)}`, { method: "PUT", body: "same" });
    expect(b.seen.at(-1)).toEqual({ method: "PUT", url: "/kept", body: "same" });
  });

  it("leaves redirect: manual to the caller", async () => {
    const r = await followChecked(checked([hostOf(a.base)]), `${a.base}/r?to=${encodeURIComponent(`${b.base}/secret`)}`, {
      redirect: "manual",
    });
    expect(r.status).toBe(302);
    expect(b.seen.filter((s) => s.url === "/secret")).toHaveLength(0);
  });
});
