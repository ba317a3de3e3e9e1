// The same app, unchanged, on Node, on Deno, and as the deploy bundle (postal-mime aliased away,
// minified) in `workerd serve` alone: the end-to-end happy path through each. The last one also
// runs send-email unbatched (CELERIAC_UNBATCHED), one Resend call per email.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Hono } from "hono";
import { setCookie } from "hono/cookie";
import { afterAll, describe, expect, it } from "vitest";
import { type AppProcess, DEV_API_KEY, freePort, ROOT, type Runtime, startApp } from "../dev/stack.ts";
import { serveNode } from "../src/node.ts";
import { call, mailbox, settle, stack, unique, until } from "./helpers/api.ts";

const cases = [
  ["node", {}],
  ["deno", {}],
  ["workerd-serve", { CELERIAC_UNBATCHED: "send-email" }],
] as const satisfies readonly (readonly [Runtime, Record<string, string>])[];

describe.each(cases)("on %s", (runtime, vars: Record<string, string>) => {
  let app: AppProcess | undefined;
  afterAll(() => app?.close());

  it("enqueues, delivers through the broker, sends one email, reports succeeded", async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    app = await startApp(runtime, port, { ...stack().env, CELERIAC_PUBLIC_URL: url, ...vars });
    const health = await (await fetch(`${url}/healthz`)).json();
    expect(health).toMatchObject({ ok: true, checks: { redis: { ok: true } } });

    const subject = unique(`hello from ${runtime}`);
    const r = await call("POST", "/v1/tasks/send-email", { payload: { to: "ada@celeriac.dev", subject, text: "hi" } }, { base: url });
    expect(r.status).toBe(202);
    const done = await settle(r.body.id, undefined, url);
    expect(done.state).toBe("succeeded");
    const sent = await mailbox.withSubject(subject);
    expect(sent).toHaveLength(1);
    expect(sent[0].endpoint).toBe(vars.CELERIAC_UNBATCHED ? "/emails" : "/emails/batch");

    // The dashboard: signing in sets the session cookie, which opens the overview.
    const signIn = await fetch(`${url}/ui/sign-in`, {
      method: "POST",
      redirect: "manual",
      headers: { "content-type": "application/x-www-form-urlencoded", origin: url },
      body: new URLSearchParams({ key: DEV_API_KEY }),
    });
    expect(signIn.status).toBe(303);
    const cookie = signIn.headers.getSetCookie()[0]!.split(";")[0]!;
    const overview = await fetch(`${url}/ui`, { headers: { cookie } });
    expect(overview.status).toBe(200);
    expect(await overview.text()).toContain("<h1>Overview</h1>");
  }, 120_000);

  it("serves a browser's public call: CORS, the limits, the code mailed", async () => {
    const url = app!.url;
    const email = `runtime-${runtime}-${Math.random().toString(36).slice(2, 8)}@celeriac.dev`;
    const r = await fetch(`${url}/v1/public/verification`, {
      method: "POST",
      headers: {
        origin: stack().site,
        "content-type": "application/json",
        "x-forwarded-for": "203.0.113.99",
        "cf-connecting-ip": "203.0.113.98",
      },
      body: JSON.stringify({ email, purpose: "sign-in" }),
    });
    expect(r.status).toBe(202);
    expect(r.headers.get("access-control-allow-origin")).toBe(stack().site);
    expect(r.headers.get("ratelimit-policy")).toBe('"ip";q=10;w=600');
    await until("the code mail", async () => ((await mailbox.to(email)).length === 1 ? true : undefined));
  }, 60_000);

  it("a body cut short of its Content-Length (the client gave up) is a 400, not celeriac's 500", async () => {
    const u = new URL(app!.url);
    const status = await new Promise<string>((resolve, reject) => {
      const sock = connect(Number(u.port), u.hostname, () => {
        const head = `POST /v1/tasks/send-email HTTP/1.1\r\nHost: ${u.host}\r\nauthorization: Bearer ${DEV_API_KEY}\r\n`;
        // 7 of the 100 bytes declared, then the client closes its side.
        sock.end(`${head}content-type: application/json\r\ncontent-length: 100\r\n\r\n{"a":1}`);
      });
      let got = "";
      sock.on("data", (d) => {
        got += d;
        if (got.includes("\r\n")) resolve(got.split("\r\n")[0]!);
      });
      sock.on("error", reject);
      sock.on("close", () => resolve(got.split("\r\n")[0]!));
    });
    expect(status).toBe("HTTP/1.1 400 Bad Request");
  }, 30_000);
});

describe("the Node entry", () => {
  it("sends every Set-Cookie header an app sets (a cookie login needs more than the last one)", async () => {
    const app = new Hono().get("/login", (c) => {
      setCookie(c, "session", "s1", { httpOnly: true, path: "/" });
      setCookie(c, "csrf", "c1", { path: "/" });
      return c.text("ok");
    });
    const server = await serveNode({ port: 0, app });
    try {
      const r = await fetch(`${server.url}/login`);
      expect(r.status).toBe(200);
      expect(r.headers.getSetCookie()).toEqual(["session=s1; Path=/; HttpOnly", "csrf=c1; Path=/"]);
    } finally {
      await server.close();
    }
  });

  it("runs from a checkout whose path holds a space and is reached through a symlink", async () => {
    const dir = mkdtempSync(join(tmpdir(), "celeriac path "));
    try {
      symlinkSync(ROOT, join(dir, "repo"));
      // With no variables set, sync-schedules must say so and fail, not exit 0 having done nothing.
      const out = await new Promise<{ code: number | null; stderr: string }>((done) =>
        execFile(
          process.execPath,
          [join(dir, "repo/src/node.ts"), "sync-schedules"],
          { env: { PATH: process.env.PATH ?? "" } },
          (err, _stdout, stderr) => done({ code: err ? (err.code as number) : 0, stderr }),
        ),
      );
      expect(out.code).toBe(1);
      expect(out.stderr).toMatch(/^\[celeriac\] bad configuration: CELERIAC_PUBLIC_URL is missing/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
