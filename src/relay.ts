import type { Context, MiddlewareHandler } from "hono";
import { ConfigError, loadConfig, type Config, type Env } from "./env.ts";
import { ApiError, messageOf } from "./errors.ts";
import { enqueue } from "./enqueue.ts";
import { checkPayload, type Registry } from "./registry.ts";
import { servicesFor, type Services } from "./services.ts";
import { TaskStore } from "./store/index.ts";
import type { EnqueueFn } from "./task.ts";
import { toSeconds } from "./durations.ts";

/** Everything a request needs, built from its env (cached per isolate by config identity). */
export interface Relay {
  config: Config;
  services: Services;
  store: TaskStore;
  registry: Registry;
  /** Enqueue from inside a task (chaining), validated like an API call; idempotency keys share one scope. */
  enqueueFromTask: EnqueueFn;
}

export type AppEnv = { Bindings: Env; Variables: { relay: Relay; apiKey: string } };

// One relay per (registry, config): apps with different task sets may share an env object.
const relays = new WeakMap<Registry, WeakMap<Config, Relay>>();

function relayFor(config: Config, registry: Registry): Relay {
  let byConfig = relays.get(registry);
  if (!byConfig) relays.set(registry, (byConfig = new WeakMap()));
  const r = byConfig.get(config);
  if (r) return r;
  const services = servicesFor(config);
  const store = new TaskStore(services.redis);
  const relay: Relay = {
    config,
    services,
    store,
    registry,
    enqueueFromTask: async (name, payload, options = {}) => {
      const def = registry.get(name);
      if (!def) throw new Error(`[celeriac] no task named "${name}"`);
      const checked = await checkPayload(def, payload, config);
      if (!checked.ok) throw new Error(`[celeriac] ${name}: ${checked.issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`);
      const delay = options.delay === undefined ? undefined : toSeconds(options.delay);
      const notBefore =
        options.notBefore === undefined
          ? undefined
          : typeof options.notBefore === "number"
            ? options.notBefore * 1000
            : Date.parse(options.notBefore);
      // ":" cannot occur in an API key name, so this scope never meets a caller's.
      const [e] = await enqueue(relay, ":task", [
        {
          def,
          payload,
          ...(delay !== undefined ? { delay } : {}),
          ...(notBefore !== undefined && !Number.isNaN(notBefore) ? { notBefore } : {}),
          ...(options.idempotencyKey ? { idempotencyKey: options.idempotencyKey } : {}),
        },
      ]);
      return { id: e!.id, state: e!.state, runAt: e!.runAt };
    },
  };
  byConfig.set(config, relay);
  return relay;
}

/** Middleware: parses the env and puts the relay on the context; a bad env is a 503 naming it. */
export function relay(registry: Registry): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    let config: Config;
    try {
      config = loadConfig(c.env ?? {});
    } catch (err) {
      const problems = err instanceof ConfigError ? err.problems : [messageOf(err)];
      throw new ApiError(503, "misconfigured", `[celeriac] the relay is misconfigured: ${problems.join("; ")}`);
    }
    c.set("relay", relayFor(config, registry));
    await next();
  };
}

export const relayOf = (c: Context<AppEnv>) => c.get("relay");
