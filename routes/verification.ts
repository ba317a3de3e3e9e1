import { Hono } from "hono";
import { ApiError } from "../src/errors.ts";
import { type AppEnv, relayOf } from "../src/relay.ts";
import { checkVerification, VERIFICATION_TASK } from "../src/verification.ts";

/** `POST /v1/verification/check` (API key): for backends that check a code themselves. */
export const verification = new Hono<AppEnv>().post("/check", (c) => {
  const def = relayOf(c).registry.get(VERIFICATION_TASK);
  if (!def) throw new ApiError(404, { code: "unknown_task", message: `no task named "${VERIFICATION_TASK}"` });
  return checkVerification(c, def, false);
});
