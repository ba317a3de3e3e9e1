import type { TaskStore } from "./store/index.ts";
import { redisIo } from "./store/lua.ts";
import type { TaskKv } from "./task.ts";

/** How long a value is kept when `set` names no TTL (s): 7 days. */
const DEFAULT_TTL_S = 7 * 86_400;

/** The key-value store of one task type: its keys live under `<prefix>kv:<task>:`. */
export function taskKv(store: TaskStore, task: string): TaskKv {
  const at = (key: string) => {
    if (typeof key !== "string" || key.length === 0 || key.length > 512) {
      throw new TypeError(`[celeriac] task "${task}": a kv key must be 1 to 512 characters`);
    }
    return `${store.prefix}kv:${task}:${key}`;
  };
  return {
    async get<T>(key: string) {
      const k = at(key);
      const raw = await redisIo(() => store.redis.get<string>(k));
      return raw === null ? undefined : (JSON.parse(raw) as T);
    },
    async set(key, value, options = {}) {
      const k = at(key);
      const ttl = options.ttl ?? DEFAULT_TTL_S;
      if (!(Number.isInteger(ttl) && ttl > 0)) throw new TypeError(`[celeriac] task "${task}": kv ttl must be whole seconds > 0`);
      await redisIo(() => store.redis.set(k, JSON.stringify(value ?? null), { ex: ttl }));
    },
    async delete(key) {
      const k = at(key);
      await redisIo(() => store.redis.del(k));
    },
  };
}
