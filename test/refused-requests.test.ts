// Item 1 of issue 15: a caller's mistake is a 4xx, never an outage, and a refused request leaves
// nothing behind. Through the Worker in workerd, whose stack is the smallest of the runtimes.
import { describe, expect, it } from "vitest";
import { DEV_API_KEY } from "../dev/stack.ts";
import { createApp } from "../src/app.ts";
import { MAX_JSON_DEPTH, payloadProblem, tooDeepAt } from "../src/http.ts";
import { call, sign, stack, unique } from "./helpers/api.ts";

const nested = (levels: number, leaf = "1") => "[".repeat(levels) + leaf + "]".repeat(levels);

describe("deep JSON", () => {
  it("a webhook payload nested thousands of levels deep is a 400 naming the limit, not a 503", async () => {
    const raw = JSON.stringify({ payload: { url: "https://example.com/hook", body: { json: "@" } } }).replace('"@"', nested(20_000));
    const r = await call("POST", "/v1/tasks/webhook", undefined, { raw });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe("json_too_deep");
    expect(r.body.error.message).toContain(`${MAX_JSON_DEPTH} levels`);
  });

  it("refuses deep JSON in a batch too, and accepts nesting up to the limit", async () => {
    const deep = JSON.stringify({ tasks: [{ task: "webhook", payload: { url: "https://example.com/hook", body: { json: "@" } } }] });
    expect((await call("POST", "/v1/tasks", undefined, { raw: deep.replace('"@"', nested(MAX_JSON_DEPTH)) })).body.error.code).toBe(
      "json_too_deep",
    );
    // The envelope takes 5 levels here; the rest may nest.
    const ok = deep.replace('"@"', nested(MAX_JSON_DEPTH - 6)).replace('"webhook"', '"no-such-task"');
    const r = await call("POST", "/v1/tasks", undefined, { raw: ok });
    expect(r.status).toBe(422); // parsed, and refused for the unknown task only
    expect(r.body.error.issues).toEqual([{ path: "tasks.0.task", message: 'no task named "no-such-task"' }]);
  });

  it("counts brackets, not brackets inside strings", () => {
    expect(tooDeepAt(JSON.stringify({ s: '[[[[[[[[[[[[[[[[[[[[\\"[[[[' }), 3)).toBeUndefined();
    expect(tooDeepAt(nested(4), 3)).toBe(3);
  });

  it("a follow-up payload a task builds in memory is refused the same way (cycle, depth)", () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(payloadProblem(cyclic)).toMatch(/^is not JSON/);
    expect(payloadProblem(JSON.parse(nested(MAX_JSON_DEPTH + 1)))).toMatch(/deeper than/);
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(payloadProblem(deep)).toBeDefined(); // stack overflow in the serialiser, caught
    expect(payloadProblem({ a: [1, { b: 2 }] })).toBeUndefined();
  });

  it("in-process too: the same refusal whatever the runtime", async () => {
    const app = createApp();
    const body = JSON.stringify({ payload: { to: "ada@celeriac.dev", subject: unique("deep"), text: "@" } }).replace('"@"', nested(5_000));
    const r = await app.request(
      "/v1/tasks/send-email",
      { method: "POST", headers: { authorization: `Bearer ${DEV_API_KEY}`, "content-type": "application/json" }, body },
      { ...stack().env },
    );
    expect(r.status).toBe(400);
    expect(((await r.json()) as any).error.code).toBe("json_too_deep");
  });
});

describe("signed messages out of range", () => {
  it("a signed delivery whose runAt is 1e308 is refused as no celeriac message (489), not a Redis error", async () => {
    const url = `${stack().env.CELERIAC_PUBLIC_URL}/qstash/deliver`;
    const id = "tsk_0000000000farfuturerunatxxx";
    const body = JSON.stringify({
      v: 1,
      id,
      task: "send-email",
      payload: { to: "ada@celeriac.dev", subject: "far", text: "x" },
      options: { retries: 0, timeout: 5, resultTtl: 3600 },
      createdAt: Date.now(),
      runAt: 1e308,
    });
    const r = await fetch(url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "upstash-signature": sign({ key: stack().env.QSTASH_CURRENT_SIGNING_KEY!, url, body }),
      },
      body,
    });
    expect(r.status).toBe(489);
    expect(((await r.json()) as any).error.code).toBe("invalid_message");
    expect((await call("GET", `/v1/tasks/${id}`)).status).toBe(404);
  });
});
