import type { Reply } from "./types.ts";

/** What to do with a request that carries an `Idempotency-Key`. */
export type Claim = { kind: "new" } | { kind: "replay"; reply: Reply } | { kind: "mismatch" } | { kind: "in_flight" };

interface Entry {
  fingerprint: string;
  reply: Reply | null;
  expiresAt: number;
}

/** Resend keeps idempotency keys for 24 hours. */
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;

export function checkIdempotencyKey(key: string): boolean {
  return key.length >= 1 && key.length <= 256;
}

/** Same shape, same fingerprint, whatever the key order the caller serialised. */
export function fingerprint(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    typeof v === "object" && v !== null && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

/** Idempotency memory, scoped per API key as Resend scopes it per team. */
export class IdempotencyStore {
  #entries = new Map<string, Entry>();

  /** Claims `key` for a new request (marking it in flight) or says why not. */
  claim(scope: string, key: string, print: string, now = Date.now()): Claim {
    const id = `${scope}\u0000${key}`;
    const entry = this.#entries.get(id);
    if (entry && entry.expiresAt > now) {
      if (!entry.reply) return { kind: "in_flight" };
      return entry.fingerprint === print ? { kind: "replay", reply: entry.reply } : { kind: "mismatch" };
    }
    this.#entries.set(id, { fingerprint: print, reply: null, expiresAt: now + IDEMPOTENCY_TTL_MS });
    return { kind: "new" };
  }

  /** Remembers the answer so a retry with the same key gets it back. */
  complete(scope: string, key: string, reply: Reply, now = Date.now()): void {
    const entry = this.#entries.get(`${scope}\u0000${key}`);
    if (entry) Object.assign(entry, { reply, expiresAt: now + IDEMPOTENCY_TTL_MS });
  }

  /** Forgets a claim whose request failed, so the caller may retry with the same key. */
  release(scope: string, key: string): void {
    this.#entries.delete(`${scope}\u0000${key}`);
  }

  clear(): void {
    this.#entries.clear();
  }
}
