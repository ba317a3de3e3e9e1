import * as v from "valibot";
import type { Issue } from "./errors.ts";
import type { Config } from "./env.ts";
import type { TaskDefinition } from "./task.ts";

/** The task types an app knows, by name. */
export class Registry {
  readonly #byName = new Map<string, TaskDefinition>();
  constructor(tasks: TaskDefinition[]) {
    for (const t of tasks) {
      if (this.#byName.has(t.name)) throw new TypeError(`[celeriac] task "${t.name}" is defined twice`);
      this.#byName.set(t.name, t);
    }
  }
  get(name: string): TaskDefinition | undefined {
    return this.#byName.get(name);
  }
  get names(): string[] {
    return [...this.#byName.keys()];
  }
  all(): TaskDefinition[] {
    return [...this.#byName.values()];
  }
}

/** Checks a payload against a task's schema: the parsed output, or the issues by field. */
export async function checkPayload(
  def: TaskDefinition,
  payload: unknown,
  config: Config,
  path = "payload",
): Promise<{ ok: true; output: unknown } | { ok: false; issues: Issue[] }> {
  const r = await v.safeParseAsync(def.input, payload);
  if (!r.success) return { ok: false, issues: toIssues(r.issues, path) };
  const more = def.check?.(r.output, config) ?? [];
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
