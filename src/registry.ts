import * as v from "valibot";
import type { Issue } from "./errors.ts";
import type { TaskDefinition } from "./task.ts";

/** Any task type, whatever its payload and env. */
export type AnyTask = TaskDefinition<any, any>;

/** The task types an app knows, by name. */
export class Registry {
  readonly #byName = new Map<string, AnyTask>();
  constructor(tasks: readonly AnyTask[]) {
    for (const t of tasks) {
      if (this.#byName.has(t.name)) throw new TypeError(`[celeriac] task "${t.name}" is defined twice`);
      this.#byName.set(t.name, t);
    }
  }
  get(name: string): AnyTask | undefined {
    return this.#byName.get(name);
  }
  /** A task callers may enqueue (not one of celeriac's internal ones). */
  callable(name: string): AnyTask | undefined {
    const def = this.#byName.get(name);
    return def?.internal ? undefined : def;
  }
  /** The names of the tasks callers may enqueue. */
  get names(): string[] {
    return [...this.#byName.values()].filter((t) => !t.internal).map((t) => t.name);
  }
  all(): AnyTask[] {
    return [...this.#byName.values()];
  }
}

/** Checks a payload against a task's schema and `check` (given its env): the output, or the issues by field. */
export async function checkPayload(
  def: AnyTask,
  payload: unknown,
  env: unknown,
  path = "payload",
): Promise<{ ok: true; output: unknown } | { ok: false; issues: Issue[] }> {
  const r = await v.safeParseAsync(def.input, payload);
  if (!r.success) return { ok: false, issues: toIssues(r.issues, path) };
  const more = def.check?.(r.output, env) ?? [];
  if (more.length) {
    return { ok: false, issues: more.map((i) => ({ path: [path, i.path].filter(Boolean).join("."), message: i.message })) };
  }
  return { ok: true, output: r.output };
}

/** valibot issues as `{path, message}` with dot paths under `prefix`. */
export function toIssues(issues: readonly v.BaseIssue<unknown>[], prefix = ""): Issue[] {
  return issues.map((i) => {
    const dot = v.getDotPath(i);
    return { path: [prefix, dot].filter(Boolean).join(".") || "(root)", message: i.message };
  });
}
