// Payload paths whose values never leave the QStash message: the task record (and so every API
// answer and page) holds "[redacted]" in their place. A path is dot-separated keys, `*` standing
// for every key or index (`headers.*`, `body.json.code`).

/** What a redacted value reads as. */
export const REDACTED = "[redacted]";

/** A redact path as tasks and callers write it. */
export const REDACT_PATH = /^(?:\*|[A-Za-z0-9_$-]{1,64})(?:\.(?:\*|[A-Za-z0-9_$-]{1,64})){0,15}$/;

/**
 * The payload with every value at `paths` replaced by {@link REDACTED}, and the concrete paths
 * that held a value. The input is not changed.
 */
export function redact(payload: unknown, paths: readonly string[]): { value: unknown; redacted: string[] } {
  if (paths.length === 0) return { value: payload, redacted: [] };
  const value = structuredClone(payload);
  const redacted: string[] = [];
  const walk = (node: unknown, rest: string[], at: string[]) => {
    if (node === null || typeof node !== "object") return;
    const [head, ...tail] = rest as [string, ...string[]];
    const keys = head === "*" ? Object.keys(node) : Object.hasOwn(node, head) ? [head] : [];
    for (const k of keys) {
      const obj = node as Record<string, unknown>;
      if (tail.length) walk(obj[k], tail, [...at, k]);
      else if (obj[k] !== undefined && obj[k] !== REDACTED) {
        obj[k] = REDACTED;
        redacted.push([...at, k].join("."));
      }
    }
  };
  for (const p of paths) walk(value, p.split("."), []);
  return { value, redacted: [...new Set(redacted)].sort() };
}
