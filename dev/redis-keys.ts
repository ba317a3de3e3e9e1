// Clean-up of a key prefix in a real Redis: the tests' prefix after a run, the benches' keys.
import type { Redis as IORedis } from "ioredis";

/** Deletes every key matching `pattern` (SCAN, never KEYS, so a big database is not blocked); returns how many. */
export async function deleteKeys(r: IORedis, pattern: string): Promise<number> {
  let cursor = "0";
  let n = 0;
  for (let i = 0; i < 100_000; i++) {
    const [next, keys] = await r.scan(cursor, "MATCH", pattern, "COUNT", 2000);
    if (keys.length) n += await r.unlink(...keys);
    cursor = next;
    if (cursor === "0") break;
  }
  return n;
}
