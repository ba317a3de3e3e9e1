import { Hono } from "hono";
import * as v from "valibot";
import { ApiError } from "../src/errors.ts";
import { parseQuery } from "../src/options.ts";
import { type AppEnv, relayOf } from "../src/relay.ts";
import { listSuppressions, removeSuppression, suppressionsOf } from "../src/store/delivery.ts";

const ListQuery = v.object({
  // Redis refuses a cursor past 2^64 - 1 ("invalid cursor"): that is the caller's mistake, not a 503.
  cursor: v.optional(
    v.pipe(
      v.string(),
      v.regex(/^\d{1,20}$/, "cursor is not one this API returned"),
      v.check((s) => !/^\d{1,20}$/.test(s) || BigInt(s) < 2n ** 64n, "cursor is not one this API returned"),
    ),
    "0",
  ),
  limit: v.optional(v.pipe(v.string(), v.transform(Number), v.integer("limit must be an integer"), v.minValue(1), v.maxValue(100)), "50"),
});

const unknownAddress = (address: string) => new ApiError(404, { code: "unknown", message: `${address} is not suppressed` });

/** Addresses that hard-bounced or complained: `send-email` refuses them unless told otherwise. */
export const suppressions = new Hono<AppEnv>()
  .get("/", async (c) => {
    const { cursor, limit } = parseQuery(ListQuery, c.req.query());
    return c.json(await listSuppressions(relayOf(c).store, cursor, limit));
  })
  .get("/:address", async (c) => {
    const address = c.req.param("address");
    const [found] = await suppressionsOf(relayOf(c).store, [address]);
    if (!found) throw unknownAddress(address);
    return c.json(found);
  })
  .delete("/:address", async (c) => {
    const address = c.req.param("address");
    if (!(await removeSuppression(relayOf(c).store, address))) throw unknownAddress(address);
    return c.json({ address: address.toLowerCase(), removed: true });
  });
