/**
 * Receipts: what a browser gets back for a public task, and all it can do with it is read that
 * task's state. `<task id>.<task name>.<expiry, unix seconds base 36>.<HMAC-SHA256, base64url>`;
 * signed with CELERIAC_RECEIPT_SECRET, expiring with the task's record.
 */
import { base64Url, fromBase64, hmac, hmacKey } from "./hmac.ts";

const utf8 = new TextEncoder();

const keyFor = (secret: string) => hmacKey(`receipt\n${secret}`);

const RECEIPT = /^(tsk_[0-9a-z]{26})\.([a-z][a-z0-9-]{0,63})\.([0-9a-z]{1,10})\.([A-Za-z0-9_-]{43})$/;

/** A receipt for task `id` of type `task`, valid until `expiresAt` (ms since the epoch). */
export async function makeReceipt(secret: string, id: string, task: string, expiresAt: number): Promise<string> {
  const body = `${id}.${task}.${Math.ceil(expiresAt / 1000).toString(36)}`;
  return `${body}.${base64Url(await hmac(await keyFor(secret), body))}`;
}

export type ReceiptCheck = { ok: true; id: string; task: string } | { ok: false; reason: "malformed" | "expired"; task?: string };

/** Verifies a receipt's signature (in constant time, by Web Crypto) and its expiry. */
export async function readReceipt(secret: string, receipt: string, now = Date.now()): Promise<ReceiptCheck> {
  const m = RECEIPT.exec(receipt);
  if (!m) return { ok: false, reason: "malformed" };
  const [, id, task, exp, sig] = m as unknown as [string, string, string, string, string];
  const raw = fromBase64(sig)!; // the pattern admits base64url only
  const good = await crypto.subtle.verify("HMAC", await keyFor(secret), raw, utf8.encode(`${id}.${task}.${exp}`));
  if (!good) return { ok: false, reason: "malformed" };
  if (parseInt(exp, 36) * 1000 < now) return { ok: false, reason: "expired", task };
  return { ok: true, id, task };
}
