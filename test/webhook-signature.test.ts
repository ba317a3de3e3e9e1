// celeriac's Standard Webhooks signatures (src/webhook-signature.ts) against the official
// `standardwebhooks` package: each verifies the other's, and both refuse the same forgeries.
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { signWebhook, verifyWebhook, WEBHOOK_TOLERANCE_S } from "../src/webhook-signature.ts";

const secret = `whsec_${Buffer.from("celeriac conformance secret, 32+ bytes long").toString("base64")}`;
const other = `whsec_${Buffer.from("someone else's secret").toString("base64")}`;
const bodies = ["", '{"type":"email.delivered","data":{"email_id":"e_1"}}', "ünïcødé ✓ 🥬", "a.b.c\nwith\r\nlines"];
const nowS = () => Math.floor(Date.now() / 1000);
const headersOf = (id: string, at: number, signature: string) => ({
  "webhook-id": id,
  "webhook-timestamp": String(at),
  "webhook-signature": signature,
});

describe("Standard Webhooks, ours and the library's", () => {
  it("the library verifies our signatures, byte for byte the same as its own", async () => {
    for (const body of bodies) {
      const at = nowS();
      const ours = await signWebhook(secret, "msg_1", at, body);
      expect(ours).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
      expect(ours).toBe(new Webhook(secret).sign("msg_1", new Date(at * 1000), body));
      expect(() => new Webhook(secret).verify(body, headersOf("msg_1", at, ours), { jsonParse: false })).not.toThrow();
    }
  });
  it("we verify the library's signatures, with or without the whsec_ prefix, among several", async () => {
    const bare = secret.slice("whsec_".length);
    for (const body of bodies) {
      const at = nowS();
      const theirs = new Webhook(secret).sign("msg_2", new Date(at * 1000), body);
      expect(await verifyWebhook(secret, { id: "msg_2", timestamp: String(at), signature: theirs }, body)).toEqual({ ok: true });
      expect(await verifyWebhook(bare, { id: "msg_2", timestamp: String(at), signature: theirs }, body)).toEqual({ ok: true });
      const rotated = `v1,${Buffer.from("old key's signature").toString("base64")} ${theirs}`;
      expect(await verifyWebhook(secret, { id: "msg_2", timestamp: String(at), signature: rotated }, body)).toEqual({ ok: true });
    }
  });
  it("a wrong secret, a tampered body or id, another version: refused by both", async () => {
    const at = nowS();
    const body = '{"n":1}';
    const ours = await signWebhook(secret, "msg_3", at, body);
    const forged = new Webhook(other).sign("msg_3", new Date(at * 1000), body);
    const refusedByUs = async (signature: string, b = body, id = "msg_3") =>
      expect(await verifyWebhook(secret, { id, timestamp: String(at), signature }, b)).toMatchObject({ ok: false, reason: "signature" });
    const refusedByThem = (signature: string, b = body, id = "msg_3") =>
      expect(() => new Webhook(secret).verify(b, headersOf(id, at, signature))).toThrow(/No matching signature/);
    for (const [signature, b, id] of [
      [forged, body, "msg_3"],
      [ours, '{"n":2}', "msg_3"],
      [ours, body, "msg_4"],
      [ours.replace("v1,", "v2,"), body, "msg_3"],
      [ours.slice(0, -2), body, "msg_3"],
    ] as const) {
      await refusedByUs(signature, b, id);
      refusedByThem(signature, b, id);
    }
    expect(() => new Webhook(other).verify(body, headersOf("msg_3", at, ours))).toThrow(/No matching signature/);
  });
  it("a timestamp more than 5 minutes from now, either way: refused by both, as a timestamp", async () => {
    const body = "{}";
    for (const at of [nowS() - WEBHOOK_TOLERANCE_S - 60, nowS() + WEBHOOK_TOLERANCE_S + 60]) {
      const ours = await signWebhook(secret, "msg_5", at, body);
      expect(await verifyWebhook(secret, { id: "msg_5", timestamp: String(at), signature: ours }, body)).toMatchObject({
        ok: false,
        reason: "timestamp",
      });
      expect(() => new Webhook(secret).verify(body, headersOf("msg_5", at, ours))).toThrow(/timestamp too (old|new)/);
    }
    // At the edge of the tolerance (a fixed clock: no wall-clock race) it still holds.
    const now = 1_700_000_000_000;
    const edge = now / 1000 - WEBHOOK_TOLERANCE_S;
    const sig = await signWebhook(secret, "msg_6", edge, body);
    expect(await verifyWebhook(secret, { id: "msg_6", timestamp: String(edge), signature: sig }, body, now)).toEqual({ ok: true });
    expect(await verifyWebhook(secret, { id: "msg_6", timestamp: String(edge), signature: sig }, body, now + 1000)).toMatchObject({
      reason: "timestamp",
    });
  });
  it("missing headers and a timestamp that is not plain digits are refused (the latter stricter than the library)", async () => {
    const at = nowS();
    const sig = await signWebhook(secret, "msg_7", at, "x");
    for (const h of [
      { timestamp: String(at), signature: sig },
      { id: "msg_7", signature: sig },
      { id: "msg_7", timestamp: String(at) },
    ]) {
      expect(await verifyWebhook(secret, h, "x")).toMatchObject({ ok: false, reason: "signature" });
    }
    expect(await verifyWebhook(secret, { id: "msg_7", timestamp: `${at}abc`, signature: sig }, "x")).toMatchObject({ ok: false });
  });
  it("a secret that is not base64 throws rather than signing with garbage", async () => {
    await expect(signWebhook("whsec_a", "msg_8", nowS(), "x")).rejects.toThrow(/whsec_/);
    await expect(signWebhook("whsec_", "msg_8", nowS(), "x")).rejects.toThrow(/whsec_/);
  });
});
