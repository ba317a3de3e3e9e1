// A stand-in for Cloudflare Turnstile's siteverify endpoint, so the bot check runs offline. It
// answers as Cloudflare documents for its test secret keys (developers.cloudflare.com/turnstile,
// "Test your Turnstile implementation"); any other secret is refused as invalid, as a real
// siteverify would refuse a key it does not know.
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { readBody } from "./read-body.ts";

/** Cloudflare's test secret keys and what siteverify answers for each. */
export const TURNSTILE_TEST_SECRETS = {
  /** Always passes. */
  pass: "1x0000000000000000000000000000000AA",
  /** Always fails: `invalid-input-response`. */
  fail: "2x0000000000000000000000000000000AA",
  /** Always fails as a token already spent: `timeout-or-duplicate`. */
  spent: "3x0000000000000000000000000000000AA",
} as const;

/** The token Cloudflare's test sitekeys hand the browser. */
export const TURNSTILE_DUMMY_TOKEN = "XXXX.DUMMY.TOKEN.XXXX";

/** siteverify's documented limits: tokens are at most 2048 characters. */
const MAX_TOKEN = 2048;

export interface TurnstileStandIn {
  /** The siteverify URL to configure as `TURNSTILE_VERIFY_URL`. */
  url: string;
  /** How many siteverify calls it answered (tests check that refused requests made none). */
  calls(): number;
  close(): Promise<void>;
}

/** Answers one siteverify call: `secret`, `response` (the token) and optional `remoteip`. */
export function siteverify(secret: string | undefined, token: string | undefined) {
  const fail = (...codes: string[]) => ({ success: false, "error-codes": codes, messages: [] });
  if (!secret) return fail("missing-input-secret");
  if (!token) return fail("missing-input-response");
  if (token.length > MAX_TOKEN) return fail("invalid-input-response");
  switch (secret) {
    case TURNSTILE_TEST_SECRETS.pass:
      return {
        success: true,
        challenge_ts: new Date().toISOString(),
        hostname: "example.com",
        "error-codes": [],
        action: "",
        cdata: "",
        metadata: { interactive: false },
      };
    case TURNSTILE_TEST_SECRETS.fail:
      return fail("invalid-input-response");
    case TURNSTILE_TEST_SECRETS.spent:
      return fail("timeout-or-duplicate");
    default:
      return fail("invalid-input-secret");
  }
}

/** Starts the stand-in at `POST /turnstile/v0/siteverify` (form-encoded or JSON, like the real one). */
export async function startTurnstile(opts: { port?: number; host?: string } = {}): Promise<TurnstileStandIn> {
  const host = opts.host ?? "127.0.0.1";
  let calls = 0;
  const server = createServer(async (req, res) => {
    const json = (status: number, body: unknown) => res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    if (req.method !== "POST" || req.url !== "/turnstile/v0/siteverify") return json(404, { success: false, "error-codes": ["not-found"] });
    const raw = await readBody(req, 64 * 1024);
    if (raw === null) return json(413, { success: false, "error-codes": ["bad-request"] });
    calls++;
    let fields: Record<string, unknown>;
    try {
      fields = /json/i.test(req.headers["content-type"] ?? "")
        ? (JSON.parse(raw.toString("utf8")) as Record<string, unknown>)
        : Object.fromEntries(new URLSearchParams(raw.toString("utf8")));
    } catch {
      return json(400, { success: false, "error-codes": ["bad-request"] });
    }
    const str = (x: unknown) => (typeof x === "string" ? x : undefined);
    json(200, siteverify(str(fields.secret), str(fields.response)));
  });
  await new Promise<void>((done, failed) => {
    server.once("error", failed);
    server.listen(opts.port ?? 0, host, () => (server.off("error", failed), done()));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}/turnstile/v0/siteverify`,
    calls: () => calls,
    close: () =>
      new Promise<void>((done) => {
        server.close(() => done());
        server.closeAllConnections();
      }),
  };
}
