// The same app, unchanged, on Node and on Deno: the end-to-end happy path through each.
import { afterAll, describe, expect, it } from "vitest";
import { freePort, startApp, type AppProcess } from "../dev/stack.ts";
import { call, mailbox, settle, stack, unique } from "./helpers/api.ts";

describe.each(["node", "deno"] as const)("on %s", (runtime) => {
  let app: AppProcess | undefined;
  afterAll(() => app?.close());

  it("enqueues, delivers through the broker, sends one email, reports succeeded", async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    app = await startApp(runtime, port, { ...stack().env, CELERIAC_PUBLIC_URL: url });
    const health = await (await fetch(`${url}/healthz`)).json();
    expect(health).toMatchObject({ ok: true, checks: { redis: { ok: true } } });

    const subject = unique(`hello from ${runtime}`);
    const r = await call("POST", "/v1/tasks/send-email", { payload: { to: "ada@celeriac.dev", subject, text: "hi" } }, { base: url });
    expect(r.status).toBe(202);
    const done = await settle(r.body.id, undefined, url);
    expect(done.state).toBe("succeeded");
    expect(await mailbox.withSubject(subject)).toHaveLength(1);
  }, 120_000);
});
