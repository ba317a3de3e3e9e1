// Items 2 and 3 of issue 15: the signature is checked over the exact bytes received, in the one
// canonical encoding, and a signed scheduled run cannot be replayed under another message id.
// Through the Worker in workerd; the verifier's own checks also as units.
import { describe, expect, it } from "vitest";
import { scheduledRunId } from "../src/ids.ts";
import { QStashVerifier } from "../src/signature.ts";
import { call, sign, stack, unique } from "./helpers/api.ts";

const key = () => stack().env.QSTASH_CURRENT_SIGNING_KEY!;
const deliverUrl = () => `${stack().env.CELERIAC_PUBLIC_URL}/qstash/deliver`;
const utf8 = (s: string): Uint8Array<ArrayBuffer> => new TextEncoder().encode(s);

/** Posts raw bytes to the delivery route of the Worker with the given signature. */
async function deliver(body: Uint8Array<ArrayBuffer>, signature: string, messageId = `msg_${crypto.randomUUID()}`) {
  const r = await fetch(deliverUrl(), {
    method: "POST",
    headers: { "content-type": "application/json", "upstash-signature": signature, "upstash-message-id": messageId },
    body,
  });
  return { status: r.status, body: (await r.json()) as any };
}

/** A task message for an id no one else uses; cancelled first, so a delivery changes nothing. */
async function cancelledTask(subject: string) {
  const payload = { to: "ada@celeriac.dev", subject, text: "x" };
  const r = await call("POST", "/v1/tasks/send-email", { payload, delay: "1h" });
  await call("DELETE", `/v1/tasks/${r.body.id}`);
  const m = {
    v: 1,
    id: r.body.id,
    task: "send-email",
    payload,
    options: { retries: 0, timeout: 10, resultTtl: 60 },
    createdAt: Date.now(),
    runAt: Date.now(),
  };
  return JSON.stringify(m);
}

describe("the signature covers the exact bytes", () => {
  it("accepts the signed bytes as they are (control)", async () => {
    const body = utf8(await cancelledTask(unique("control \uFFFD")));
    const r = await deliver(body, sign({ key: key(), url: deliverUrl(), body }));
    expect(r.status).toBe(200);
    expect(r.body.skipped).toBe("cancelled");
  });

  it("refuses the signed body with a UTF-8 BOM prepended", async () => {
    const body = utf8(await cancelledTask(unique("bom")));
    const withBom = new Uint8Array([0xef, 0xbb, 0xbf, ...body]);
    expect((await deliver(withBom, sign({ key: key(), url: deliverUrl(), body }))).status).toBe(401);
  });

  it("refuses invalid bytes where the signed body had U+FFFD", async () => {
    const text = await cancelledTask(unique("replacement \uFFFD"));
    const signed = utf8(text);
    const at = signed.findIndex((b, i) => b === 0xef && signed[i + 1] === 0xbf && signed[i + 2] === 0xbd);
    const altered = new Uint8Array([...signed.slice(0, at), 0xff, ...signed.slice(at + 3)]);
    // Decoded leniently, the altered bytes read as the signed text: only a byte check tells.
    expect(new TextDecoder().decode(altered)).toBe(text);
    expect((await deliver(altered, sign({ key: key(), url: deliverUrl(), body: signed }))).status).toBe(401);
  });

  it("refuses the JWT signature re-encoded in standard base64 (+/ and =)", async () => {
    const body = utf8(await cancelledTask(unique("b64")));
    // Sign until the signature segment holds a - or _ so that standard base64 spells it differently.
    let token = "";
    do token = sign({ key: key(), url: deliverUrl(), body });
    while (!/[-_]/.test(token.split(".")[2]!));
    const [h, c, s] = token.split(".") as [string, string, string];
    const standard = Buffer.from(s, "base64url").toString("base64");
    expect(standard).not.toBe(s);
    expect((await deliver(body, `${h}.${c}.${standard}`)).status).toBe(401);
    expect((await deliver(body, `${h}.${c}.${s}=`)).status).toBe(401);
    expect((await deliver(body, token)).status).toBe(200);
  });

  it("refuses alg none, a wrong key, an expired token and another sub", async () => {
    const body = utf8(await cancelledTask(unique("forged")));
    const [h, c] = sign({ key: key(), url: deliverUrl(), body, alg: "none" }).split(".");
    expect((await deliver(body, `${h}.${c}.`)).status).toBe(401);
    expect((await deliver(body, sign({ key: "sig_wrong", url: deliverUrl(), body }))).status).toBe(401);
    const past = Math.floor(Date.now() / 1000) - 600;
    expect((await deliver(body, sign({ key: key(), url: deliverUrl(), body, iat: past, exp: past + 300 }))).status).toBe(401);
    expect((await deliver(body, sign({ key: key(), url: `${deliverUrl()}?x=1`, body }))).status).toBe(401);
  });
});

describe("QStashVerifier", () => {
  const v = new QStashVerifier("sig_current", "sig_next");
  const url = "https://relay.example/qstash/deliver";
  it("accepts the next key, and a padded body claim", async () => {
    const body = utf8("{}");
    const claims = await v.verifyToken(sign({ key: "sig_next", url, body }), url);
    await expect(v.checkBody(claims, body)).resolves.toBeUndefined();
    await expect(v.checkBody(claims, utf8("{} "))).rejects.toThrow(/does not match/);
  });
  it("refuses what the official Receiver (jose) refuses: exp reached, a non-numeric nbf or iat, a crit header", async () => {
    const iat = Math.floor(Date.now() / 1000);
    const token = sign({ key: "sig_current", url, body: "x", iat });
    await expect(v.verifyToken(token, url, (iat + 299) * 1000)).resolves.toBeDefined(); // control
    await expect(v.verifyToken(token, url, (iat + 300) * 1000)).rejects.toThrow(/expired/); // exp = iat + 300
    await expect(v.verifyToken(sign({ key: "sig_current", url, body: "x", claims: { nbf: "0" } }), url)).rejects.toThrow(/nbf/);
    await expect(v.verifyToken(sign({ key: "sig_current", url, body: "x", claims: { iat: "now" } }), url)).rejects.toThrow(/iat/);
    await expect(v.verifyToken(sign({ key: "sig_current", url, body: "x", header: { crit: ["b64"], b64: false } }), url)).rejects.toThrow(
      /crit/,
    );
  });
  it("refuses a signature segment with non-zero trailing bits (a second spelling)", async () => {
    const token = sign({ key: "sig_current", url, body: "x" });
    const [h, c, s] = token.split(".") as [string, string, string];
    // 32 bytes → 43 characters; the last carries 2 unused bits.
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const last = alphabet.indexOf(s.at(-1)!);
    const twin = s.slice(0, -1) + alphabet[last ^ 1];
    expect(Buffer.from(twin, "base64url")).toEqual(Buffer.from(s, "base64url"));
    await expect(v.verifyToken(`${h}.${c}.${twin}`, url)).rejects.toThrow(/canonical/);
  });
});

describe("a scheduled run cannot be replayed", () => {
  it("the same signed delivery under another Upstash-Message-Id is refused and runs nothing", async () => {
    const schedule = `celeriac-daily-stats-${unique("replay").replace(" ", "-")}`;
    const body = utf8(
      JSON.stringify({
        v: 1,
        schedule,
        task: "daily-stats",
        payload: { date: "2020-01-01" },
        options: { retries: 0, timeout: 60, resultTtl: 60 },
      }),
    );
    const token = sign({ key: key(), url: deliverUrl(), body });
    const first = `msg_${crypto.randomUUID()}`;
    const r1 = await deliver(body, token, first);
    expect(r1.status).toBe(200);
    expect(r1.body.state).toBe("succeeded");
    const replayed = `msg_${crypto.randomUUID()}`;
    const r2 = await deliver(body, token, replayed);
    expect(r2.status).toBe(401);
    expect(r2.body.error.code).toBe("replayed_signature");
    expect((await call("GET", `/v1/tasks/${await scheduledRunId(first)}`)).body.state).toBe("succeeded");
    expect((await call("GET", `/v1/tasks/${await scheduledRunId(replayed)}`)).status).toBe(404);
    // A fresh token (QStash signs each attempt) for the same firing is its retry: acknowledged, not run again.
    const r3 = await deliver(body, sign({ key: key(), url: deliverUrl(), body }), first);
    expect(r3).toMatchObject({ status: 200, body: { skipped: "succeeded" } });
  });
});
