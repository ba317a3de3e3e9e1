import type { Context, MiddlewareHandler } from "hono";
import { type Config, ConfigError, type Env, loadConfig, loadTaskEnv, type TaskEnv } from "./env.ts";
import { ApiError, messageOf } from "./errors.ts";
import type { OutboundFetch } from "./outbound.ts";
import type { AnyTask, Registry } from "./registry.ts";
import { type Services, servicesFor } from "./services.ts";
import type { SignedClaims } from "./signature.ts";
import { TaskStore } from "./store/index.ts";
import type { FlowControl } from "./task.ts";

/** What one app is made of: its task types and any clients injected instead of the env's. */
export interface Wiring {
  registry: Registry;
  services?: Partial<Services> | undefined;
  /** The runtime's checked fetch for calls on a caller's behalf. */
  outbound: OutboundFetch;
}

/** Everything a request needs, built from its env (cached per isolate by config identity). */
export interface Relay {
  config: Config;
  services: Services;
  store: TaskStore;
  registry: Registry;
  /** Each task's own variables, parsed with the core's. */
  taskEnvs: Map<string, TaskEnv>;
  /** The runtime's checked fetch, given the hosts a task may reach although private. */
  outbound: OutboundFetch;
}

export type AppEnv = { Bindings: Env; Variables: { relay: Relay; apiKey: string; body: string; claims: SignedClaims } };

// One relay per (app, config): apps with different task sets may share an env object.
const relays = new WeakMap<Wiring, WeakMap<Config, Relay>>();

/** The relay for an env; throws a ConfigError when the core's own variables are bad. */
export function relayFor(wiring: Wiring, env: Env): Relay {
  const config = loadConfig(env);
  let byConfig = relays.get(wiring);
  if (!byConfig) relays.set(wiring, (byConfig = new WeakMap()));
  const hit = byConfig.get(config);
  if (hit) return hit;
  const services = servicesFor(config, wiring.services);
  const relay: Relay = {
    config,
    services,
    store: new TaskStore(services.redis, config.redisPrefix),
    registry: wiring.registry,
    taskEnvs: new Map(wiring.registry.all().map((t) => [t.name, loadTaskEnv(env, t)])),
    outbound: wiring.outbound,
  };
  byConfig.set(config, relay);
  return relay;
}

/** Every task variable that is missing or malformed, each line naming its task. */
export const taskProblems = (relay: Relay) => [...relay.taskEnvs.values()].flatMap((e) => (e.ok ? [] : e.problems));

/** A task's parsed variables; a 503 naming them when they are missing or malformed. */
export function taskEnv(relay: Relay, def: AnyTask): unknown {
  const e = relay.taskEnvs.get(def.name) ?? { ok: false, problems: [`task "${def.name}" is not registered`] };
  if (e.ok) return e.env;
  throw new ApiError(503, {
    code: "misconfigured",
    message: `[celeriac] ${e.problems.join("; ")}`,
    retryAfter: 60,
  });
}

/**
 * The flow control of a task's own messages. A coalesced task's deliveries only join its outbox,
 * so they go unpaced; its flushes, which do the work, carry the task's flow control (src/batch.ts).
 */
export function deliveryFlowControl(relay: Pick<Relay, "taskEnvs" | "config">, def: AnyTask): FlowControl | undefined {
  const coalesced = def.batch && def.runBatch && !relay.config.unbatched.includes(def.name);
  return coalesced ? undefined : flowControlOf(relay, def);
}

/** A task's flow control, read from its variables when it is a function of them. */
export function flowControlOf(relay: Pick<Relay, "taskEnvs">, def: AnyTask): FlowControl | undefined {
  const fc = def.flowControl;
  if (typeof fc !== "function") return fc;
  const e = relay.taskEnvs.get(def.name);
  return e?.ok ? fc(e.env as never) : undefined;
}

/** Middleware: parses the env and puts the relay on the context; a bad env is a 503 naming it. */
export function relay(wiring: Wiring): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    try {
      c.set("relay", relayFor(wiring, c.env ?? {}));
    } catch (err) {
      const problems = err instanceof ConfigError ? err.problems : [messageOf(err)];
      throw new ApiError(503, {
        code: "misconfigured",
        message: `[celeriac] the relay is misconfigured: ${problems.join("; ")}`,
        cause: err,
      });
    }
    await next();
  };
}

export const relayOf = (c: Context<AppEnv>) => c.get("relay");
