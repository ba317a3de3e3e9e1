import * as v from "valibot";
import type { Context, MiddlewareHandler } from "hono";
import { ConfigError, loadConfig, type Config, type Env } from "./env.ts";
import { ApiError, PermanentError, messageOf } from "./errors.ts";
import { enqueue } from "./enqueue.ts";
import { toIssues, type Registry } from "./registry.ts";
import { EnqueueBody, toItem } from "./options.ts";
import { servicesFor, type Services } from "./services.ts";
import { TaskStore } from "./store/index.ts";
import type { EnqueueFn } from "./task.ts";

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
      // Checked like an API call; a bad follow-up is a bug in the task, so it fails for good.
      const body = v.safeParse(EnqueueBody, { ...options, payload });
      const r = body.success
        ? await toItem(registry, config, name, body.output, "")
        : { issues: toIssues(body.issues) };
      if ("issues" in r) {
        throw new PermanentError(`enqueue "${name}": ${r.issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`, "invalid_follow_up");
      }
      // ":" cannot occur in an API key name, so this scope never meets a caller's.
      const [e] = await enqueue(relay, ":task", [r.item]);
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
