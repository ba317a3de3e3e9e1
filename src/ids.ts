const ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz";

/** A task id: `tsk_` + 10 time chars + 16 random chars (Crockford base32), sortable by creation. */
export function newTaskId(now = Date.now()): string {
  let time = "";
  for (let t = now, i = 0; i < 10; i++, t = Math.floor(t / 32)) time = ALPHABET[t % 32] + time;
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  let rand = "";
  for (const b of bytes) rand += ALPHABET[b % 32];
  return `tsk_${time}${rand}`;
}

export const TASK_ID = /^tsk_[0-9a-z]{26}$/;

/** base32 of the first 26 bytes of SHA-256 over `text`: 130 bits, enough to never collide. */
async function hashedId(text: string): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  let s = "";
  for (let i = 0; i < 26; i++) s += ALPHABET[d[i]! % 32];
  return `tsk_${s}`;
}

/** The task id of an enqueue with an idempotency key: every repeat of the key names one task. */
export function idempotentTaskId(scope: string, key: string): Promise<string> {
  return hashedId(`idempotency\n${scope}\n${key}`);
}

/**
 * The task id of one run of a schedule, derived from its QStash message id: stable across that
 * message's retries (so the claim dedupes them) and distinct for every firing. The message id
 * header is not signed, so the delivery route lets each signature token start one run only.
 */
export function scheduledRunId(messageId: string): Promise<string> {
  return hashedId(`schedule-run\n${messageId}`);
}
