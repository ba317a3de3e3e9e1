// Item 5 of issue 15, where the connection is made: on Node, a name that resolves to a private
// address is refused by the lookup the connection itself uses (no rebinding window), end to end
// through the broker. DNS is stood in for by a resolver that maps one test name to loopback,
// as a public name pointing at 127.0.0.1 (127.0.0.1.nip.io, localtest.me) would.
import { type LookupAddress, lookup } from "node:dns";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { guardedFetch, type Resolve, serveNode } from "../src/node.ts";
import { refusalOf } from "../src/outbound.ts";
import { call, settle, stack } from "./helpers/api.ts";
import { startWebhookReceiver, type WebhookReceiver } from "./helpers/webhook-receiver.ts";

const REBIND = "rebind.celeriac-test.dev";
const resolve: Resolve = (host, options, done) =>
  host === REBIND ? done(null, [{ address: "127.0.0.1", family: 4 } as LookupAddress]) : lookup(host, options, done as never);

let rx: WebhookReceiver;
beforeAll(async () => {
  rx = await startWebhookReceiver(stack().env.CELERIAC_WEBHOOK_SECRET!);
});
afterAll(() => rx?.close());
const port = () => new URL(rx.base).port;

describe("Node: the address dialled is checked", () => {
  it("refuses a name resolving to loopback even when the loopback address itself is allow-listed", async () => {
    const f = guardedFetch(resolve)(["127.0.0.1"]);
    const err = await f(`http://${REBIND}:${port()}/x`).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(refusalOf(err)?.message).toMatch(/resolves to 127\.0\.0\.1, a loopback address/);
    expect(rx.receipts("/x")).toHaveLength(0);
    // The allow-listed literal still connects: the check is per address, not a blanket block.
    expect((await f(`${rx.base}/y`)).status).toBe(200);
  });

  it("checks every hop of a followed redirect, an IP literal's included (Node dials those without a lookup)", async () => {
    // The first hop is allow-listed; where it redirects to is not, and must be refused there.
    const f = guardedFetch(resolve)([`${REBIND}:${port()}`]);
    for (const [path, to] of [
      ["/hop-literal", `${rx.base}/secret-literal`],
      ["/hop-name", `http://${REBIND}:65001/secret-name`],
      ["/hop-meta", "http://169.254.169.254/latest/meta-data/"],
    ] as const) {
      rx.script(path, [{ status: 302, headers: { location: to } }]);
      const err = await f(`http://${REBIND}:${port()}${path}`).then(
        (r) => `answered ${r.status}`,
        (e: unknown) => e,
      );
      expect(refusalOf(err)?.message ?? `let through: ${String(err)}`, `${path} → ${to}`).toMatch(/refused/);
      expect(rx.receipts(path)).toHaveLength(1);
    }
    expect(rx.receipts("/secret-literal")).toHaveLength(0);
    expect(rx.receipts("/secret-name")).toHaveLength(0);
    // A redirect to an allowed host is followed as before.
    rx.script("/hop-ok", [{ status: 302, headers: { location: `http://${REBIND}:${port()}/landed` } }]);
    expect((await f(`http://${REBIND}:${port()}/hop-ok`)).status).toBe(200);
    expect(rx.receipts("/landed")).toHaveLength(1);
  });

  it("connects to an allow-listed name", async () => {
    const r = await guardedFetch(resolve)([REBIND])(`http://${REBIND}:${port()}/z`);
    expect(r.status).toBe(200);
  });

  it("a webhook task to such a name fails for good and stores no answer", async () => {
    let server: { url: string; close: () => Promise<void> } | undefined;
    const env: Record<string, string> = { ...stack().env };
    try {
      server = await serveNode({ port: 0, env: () => env, resolve });
      env.CELERIAC_PUBLIC_URL = server.url;
      const path = `/rebound/${crypto.randomUUID()}`;
      const r = await call("POST", "/v1/tasks/webhook", { payload: { url: `http://${REBIND}:${port()}${path}` } }, { base: server.url });
      expect(r.status).toBe(202); // the name looks public: only its address tells
      const done = await settle(r.body.id, undefined, server.url);
      expect(done).toMatchObject({ state: "failed", attempts: 1, error: { code: "target_refused", retryable: false } });
      expect(done.result).toBeUndefined();
      expect(rx.receipts(path)).toHaveLength(0);
    } finally {
      await server?.close();
    }
  });
});
