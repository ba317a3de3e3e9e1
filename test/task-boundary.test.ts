// The task boundary: tasks import only src/task.ts; ctx is typed by the task (its env, its
// follow-ups) and holds no store or config; a task with variables of its own is one file, and
// when they are missing only that task stops (named in /healthz and its routes).
import { readdirSync, readFileSync } from "node:fs";
import * as v from "valibot";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEV_API_KEY } from "../dev/stack.ts";
import { createApp } from "../src/app.ts";
import { ERROR_CODES } from "../src/error-codes.ts";
import { newTaskId } from "../src/ids.ts";
import { serveNode } from "../src/node.ts";
import { defineTask, type TaskContext } from "../src/task.ts";
import { tasks as builtIn } from "../tasks/index.ts";
import sendEmail from "../tasks/send-email.ts";
import { call, mailbox, settle, sign, stack, unique } from "./helpers/api.ts";
import { startWebhookReceiver, type WebhookReceiver } from "./helpers/webhook-receiver.ts";
import sendSms from "./tasks/send-sms.ts";

const root = new URL("../", import.meta.url);

describe("tasks/ imports", () => {
  it("every task file imports only ../src/task.ts, sibling tasks and libraries", () => {
    const dir = new URL("tasks/", root);
    const bad: string[] = [];
    for (const file of readdirSync(dir).filter((f) => f.endsWith(".ts"))) {
      const text = readFileSync(new URL(file, dir), "utf8");
      // `import … from`, `export … from`, a bare `import "…"` and a dynamic `import("…")`.
      for (const [, spec] of text.matchAll(/(?:(?:import|export)\s[^;]*?from\s*|\bimport\s*\(?\s*)["']([^"']+)["']/g)) {
        const ok = spec === "../src/task.ts" || /^\.\/[a-z0-9-]+\.ts$/.test(spec!) || !spec!.startsWith(".");
        if (!ok) bad.push(`${file}: ${spec}`);
      }
    }
    expect(bad).toEqual([]);
  });
});

// Type tests: `npm run typecheck` compiles this file; each @ts-expect-error must meet an error.
const typed = defineTask({
  name: "typed",
  input: v.object({ n: v.number() }),
  env: v.object({ SMS_TOKEN: v.string() }),
  async run({ n }, ctx) {
    const token: string = ctx.env.SMS_TOKEN;
    // @ts-expect-error: only the variables this task declares
    void ctx.env.RESEND_API_KEY;
    // @ts-expect-error: no store on ctx
    void ctx.store;
    // @ts-expect-error: no config on ctx
    void ctx.config;
    await ctx.enqueue(sendEmail, { to: "a@b.co", subject: "s", text: token });
    // @ts-expect-error: the payload must fit send-email (subject is missing)
    await ctx.enqueue(sendEmail, { to: "a@b.co", text: "t" });
    // @ts-expect-error: n must be a number
    await ctx.enqueue(typed, { n: "1" });
    return n;
  },
});
const noEnv: TaskContext = { env: {} } as TaskContext;
// @ts-expect-error: a task without `env` sees none
void noEnv.env.SMS_TOKEN;
void typed;

describe("error codes", () => {
  it("the README's error table lists exactly the codes of src/error-codes.ts", () => {
    const readme = readFileSync(new URL("README.md", root), "utf8");
    const rows = [...readme.matchAll(/^\| `([a-z_]+)` \| (\d{3}) \| (.+) \|$/gm)].map(([, code, status, meaning]) => ({
      code,
      status: Number(status),
      meaning,
    }));
    const table = Object.entries(ERROR_CODES).map(([code, { status, meaning }]) => ({ code, status, meaning }));
    expect(rows).toEqual(table);
  });
});

describe("a task with variables of its own", () => {
  const tasks = [...builtIn, sendSms];
  const app = createApp({ tasks });
  const post = (env: Record<string, string>, path: string, body: unknown) =>
    app.request(
      path,
      {
        method: "POST",
        headers: { authorization: `Bearer ${DEV_API_KEY}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      },
      env,
    );
  const sms = { payload: { to: "+15550100", text: "Order 1042 placed" } };

  it("missing: /healthz names it with its task (200, degraded), its routes answer 503, other tasks keep working", async () => {
    const env = { ...stack().env, SMS_API_URL: "not a url" }; // SMS_TOKEN unset
    const health = await app.request("/healthz", {}, env);
    expect(health.status).toBe(200);
    const body = (await health.json()) as any;
    expect(body).toMatchObject({ ok: true, degraded: true, checks: { config: { ok: true }, redis: { ok: true }, tasks: { ok: false } } });
    expect(body.checks.tasks.problems).toEqual(['task "send-sms": SMS_TOKEN is missing', 'task "send-sms": SMS_API_URL must be a URL']);

    const refused = await post(env, "/v1/tasks/send-sms", sms);
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toBe("60");
    const error = ((await refused.json()) as any).error;
    expect(error.code).toBe("misconfigured");
    expect(error.message).toContain('task "send-sms": SMS_TOKEN is missing');
    expect(error.message).not.toContain("RESEND");
    const batch = await post(env, "/v1/tasks", {
      tasks: [
        { task: "send-email", payload: { to: "ada@celeriac.dev", subject: "s", text: "t" } },
        { task: "send-sms", ...sms },
      ],
    });
    expect(batch.status).toBe(503);

    // A delivery of it is refused without being claimed, for QStash to retry once it is fixed.
    const url = `${stack().env.CELERIAC_PUBLIC_URL}/qstash/deliver`;
    const message = JSON.stringify({
      v: 1,
      id: "tsk_0000000000smsmissingvarsxx",
      task: "send-sms",
      payload: sms.payload,
      options: { retries: 0, timeout: 10, resultTtl: 60 },
      createdAt: Date.now(),
      runAt: Date.now(),
    });
    const delivery = await app.request(
      "/qstash/deliver",
      {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "upstash-signature": sign({ key: stack().env.QSTASH_CURRENT_SIGNING_KEY!, url, body: message }),
        },
        body: message,
      },
      env,
    );
    expect(delivery.status).toBe(503);
    expect(((await delivery.json()) as any).error.code).toBe("misconfigured");
    expect((await call("GET", "/v1/tasks/tsk_0000000000smsmissingvarsxx")).status).toBe(404);

    // Everything else still works, through the same app and env.
    const other = await post(env, "/v1/tasks/send-email", {
      payload: { to: "ada@celeriac.dev", subject: unique("still works"), text: "x" },
    });
    expect(other.status).toBe(202);
    expect((await settle(((await other.json()) as any).id)).state).toBe("succeeded");
    // And a delivery of another task, to the app whose env lacks send-sms's variables, runs.
    const id = newTaskId(Date.now());
    const subject = unique("delivered beside a misconfigured task");
    const mail = JSON.stringify({
      v: 1,
      id,
      task: "send-email",
      payload: { to: "ada@celeriac.dev", subject, text: "x" },
      options: { retries: 0, timeout: 10, resultTtl: 60 },
      createdAt: Date.now(),
      runAt: Date.now(),
    });
    const delivered = await app.request(
      "/qstash/deliver",
      {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "upstash-message-id": "msg_beside_misconfigured",
          "upstash-signature": sign({ key: stack().env.QSTASH_CURRENT_SIGNING_KEY!, url, body: mail }),
        },
        body: mail,
      },
      env,
    );
    expect(delivered.status).toBe(200);
    // send-email is coalesced: the delivery joins its outbox, and the batch's flush sends it.
    expect(await delivered.json()).toEqual({ id, state: "queued", batch: expect.stringMatching(/^send-email\./) });
    expect((await settle(id)).state).toBe("succeeded");
    expect(await mailbox.withSubject(subject)).toHaveLength(1);
  });

  it("an app task named callback is refused at startup: the name is celeriac's callback task", () => {
    const mine = defineTask({ name: "callback", input: v.object({}), run: async () => null });
    expect(() => createApp({ tasks: [...builtIn.filter((t) => t.name !== "callback"), mine] })).toThrow(/"callback" is celeriac's own/);
    expect(() => createApp({ tasks: builtIn })).not.toThrow();
  });

  it("a task whose env schema throws on a bad value degrades only that task", async () => {
    const routes = defineTask({
      name: "sms-routes",
      input: v.object({}),
      env: v.object({
        SMS_ROUTES: v.pipe(
          v.string(),
          v.transform((s) => JSON.parse(s) as unknown),
        ),
      }),
      run: async () => null,
    });
    const withRoutes = createApp({ tasks: [...builtIn, routes] });
    const env = { ...stack().env, SMS_ROUTES: "{not json" };
    const health = await withRoutes.request("/healthz", {}, env);
    expect(health.status).toBe(200);
    expect(((await health.json()) as any).checks.tasks.problems).toEqual([
      'task "sms-routes": its env schema threw a SyntaxError on one of its variables',
    ]);
    const refused = await withRoutes.request(
      "/v1/tasks/sms-routes",
      {
        method: "POST",
        headers: { authorization: `Bearer ${DEV_API_KEY}`, "content-type": "application/json" },
        body: JSON.stringify({ payload: {} }),
      },
      env,
    );
    expect(refused.status).toBe(503);
    const other = await withRoutes.request(
      "/v1/tasks/send-email",
      {
        method: "POST",
        headers: { authorization: `Bearer ${DEV_API_KEY}`, "content-type": "application/json" },
        body: JSON.stringify({ payload: { to: "ada@celeriac.dev", subject: unique("beside a throwing env"), text: "x" }, delay: "1h" }),
      },
      env,
    );
    expect(other.status).toBe(202);
    expect((await call("DELETE", `/v1/tasks/${((await other.json()) as any).id}`)).status).toBe(200);
  });

  describe("set", () => {
    let rx: WebhookReceiver;
    let served: { url: string; close: () => Promise<void> };
    beforeAll(async () => {
      rx = await startWebhookReceiver(stack().env.CELERIAC_WEBHOOK_SECRET!);
      rx.script("/sms", [{ status: 200, headers: { "content-type": "application/json" }, body: '{"id":"sms-42"}' }]);
      const env: Record<string, string> = { ...stack().env, SMS_TOKEN: "sms-token-for-tests", SMS_API_URL: `${rx.base}/sms` };
      served = await serveNode({ port: 0, tasks, env: () => env });
      env.CELERIAC_PUBLIC_URL = served.url;
    });
    afterAll(async () => {
      await served?.close();
      await rx?.close();
    });

    it("runs, reading its secret through ctx.env, with its own retry policy on the record", async () => {
      const r = await call("POST", "/v1/tasks/send-sms", sms, { base: served.url });
      expect(r.status).toBe(202);
      const done = await settle(r.body.id, undefined, served.url);
      expect(done).toMatchObject({
        state: "succeeded",
        result: { sms: "sms-42" },
        options: { retries: 4, retryDelay: "min(600000, 5000 * pow(3, retried))" },
      });
      const [receipt] = rx.receipts("/sms");
      expect(receipt!.headers.authorization).toBe("Bearer sms-token-for-tests");
      expect(JSON.parse(receipt!.body)).toEqual(sms.payload);
      expect((await (await fetch(`${served.url}/healthz`)).json()).checks.tasks).toEqual({ ok: true });
    });
  });
});
