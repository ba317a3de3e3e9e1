// The dev stack's static site (the demo pages' origin): files under its folder with the Worker's
// URL written in, nothing outside it, and a malformed path is a 400 that leaves it running.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type StaticSite, startStaticSite } from "../dev/static-site.ts";

let dir: string;
let site: StaticSite;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "celeriac-site-"));
  await writeFile(join(dir, "index.html"), "<html><head></head><body>hi</body></html>");
  site = await startStaticSite({ dir, port: 0, workerUrl: "http://127.0.0.1:1234" });
});
afterAll(async () => {
  await site?.close();
  await rm(dir, { recursive: true, force: true });
});

describe("the static site", () => {
  it("serves a page with the Worker's URL written in", async () => {
    const r = await fetch(`${site.url}/`);
    expect(r.status).toBe(200);
    expect(await r.text()).toContain('<meta name="celeriac-url" content="http://127.0.0.1:1234">');
  });
  it("answers a malformed path with 400 and keeps serving", async () => {
    const r = await fetch(`${site.url}/%E0%A4%A`);
    expect(r.status).toBe(400);
    expect((await fetch(`${site.url}/`)).status).toBe(200);
  });
});
