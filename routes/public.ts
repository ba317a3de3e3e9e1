import { Hono } from "hono";
import { ApiError } from "../src/errors.ts";
import { callPublicTask, originsOf, publicConfig, publicTask } from "../src/public.ts";
import { publicCors } from "../src/public-cors.ts";
import { readReceipt } from "../src/receipt.ts";
import { type AppEnv, relayOf } from "../src/relay.ts";
import { checkVerification, VERIFICATION_TASK } from "../src/verification.ts";

/** The browser-facing routes: no API key; CORS from the task's allow-list; limits; receipts. */
export const publicRoutes = new Hono<AppEnv>()
  // A receipt reads its task's state and nothing else: no payload, no result, no error text.
  .on(
    ["GET", "OPTIONS"],
    "/receipts/:receipt",
    publicCors(async (c) => {
      const r = await readReceipt(publicConfig(c).receiptSecret, c.req.param("receipt")!);
      const def = r.ok || r.reason === "expired" ? relayOf(c).registry.get(r.task!) : undefined;
      if (def?.public) return originsOf(c, def);
      // Not a receipt of ours: any page that may call some public task may be told so.
      return [
        ...new Set(
          relayOf(c)
            .registry.all()
            .flatMap((t) => (t.public ? originsOf(c, t) : [])),
        ),
      ];
    }),
    async (c) => {
      const r = await readReceipt(publicConfig(c).receiptSecret, c.req.param("receipt")!);
      if (!r.ok && r.reason === "expired")
        throw new ApiError(410, { code: "receipt_expired", message: "the receipt has expired, and with it the task's record" });
      if (!r.ok) throw new ApiError(404, { code: "unknown_receipt", message: "this is not a receipt celeriac issued" });
      const record = await relayOf(c).store.get(r.id);
      if (!record)
        throw new ApiError(404, { code: "unknown", message: "the task's record is gone (expired)", extra: { state: "unknown" } });
      return c.json({ state: record.state });
    },
  )
  // The verification task's second half: a code for a token, once.
  .on(
    ["POST", "OPTIONS"],
    "/verification/check",
    publicCors((c) => originsOf(c, publicTask(c, VERIFICATION_TASK))),
    (c) => checkVerification(c, publicTask(c, VERIFICATION_TASK), true),
  )
  .on(
    ["POST", "OPTIONS"],
    "/:name",
    publicCors((c) => originsOf(c, publicTask(c, c.req.param("name")!))),
    (c) => callPublicTask(c, publicTask(c, c.req.param("name")!)),
  )
  // Anything else under /v1/public is not there (and never falls through to the API-key routes).
  .all("*", (c) => {
    throw new ApiError(404, { code: "not_found", message: `no route for ${c.req.method} ${c.req.path}` });
  });
