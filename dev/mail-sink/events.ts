// Resend's delivery events, as the mail sink sends them: every accepted email produces `email.sent`
// and then what Resend would report for its recipients, Svix-signed (Standard Webhooks) and POSTed
// to a configured URL with retries. Resend's test addresses (delivered@, bounced@, complained@
// resend.dev, also with a +label) produce those outcomes; a control forces the next outcomes for
// any address (bounce, complain, delay).
import { randomUUID } from "node:crypto";
import { Webhook } from "standardwebhooks";
import type { CapturedEmail } from "./types.ts";

/** What happens to an email after it is sent. */
export type Outcome = "deliver" | "bounce" | "complain" | "delay";
const OUTCOMES: readonly Outcome[] = ["deliver", "bounce", "complain", "delay"];

/** Where events go: a URL and the `whsec_…` secret they are signed with. */
export interface EventTarget {
  url: string;
  secret: string;
}

/** One event the sink sent (or tried to), for tests and the control API. */
export interface SentEvent {
  svixId: string;
  type: string;
  emailId: string;
  to: string[];
  /** HTTP status of the last attempt; null for no answer (or no target configured). */
  status: number | null;
  attempts: number;
  body: string;
}

/** Attempts per event before the sink gives up (Svix retries for days; the sink keeps it short). */
const ATTEMPTS = 5;
const BACKOFF_MS = 200;
/** Events kept for `GET /_sink/events`. */
const KEEP = 2_000;

const TEST_ADDRESS = /^(delivered|bounced|complained)(?:\+[^@]*)?@resend\.dev$/i;
const BY_TEST_NAME: Record<string, Outcome> = { delivered: "deliver", bounced: "bounce", complained: "complain" };
/** The events each outcome produces after `email.sent`. */
const SEQUENCE: Record<Outcome, string[]> = {
  deliver: ["email.delivered"],
  bounce: ["email.bounced"],
  complain: ["email.delivered", "email.complained"],
  delay: ["email.delivery_delayed"],
};
const LAST_EVENT: Record<string, CapturedEmail["last_event"]> = {
  "email.sent": "sent",
  "email.delivered": "delivered",
  "email.bounced": "bounced",
  "email.complained": "complained",
  "email.delivery_delayed": "delivery_delayed",
};

/** Parses `POST /_sink/outcomes`: `{address, outcome, count?}`; a string is why it was refused. */
export function parseForced(input: unknown): { address: string; outcome: Outcome; count: number } | string {
  if (typeof input !== "object" || input === null) return "expected a JSON object {address, outcome, count?}";
  const { address, outcome, count = 1 } = input as Record<string, unknown>;
  if (typeof address !== "string" || !/^[^\s@<>]+@[^\s@<>]+$/.test(address)) return "address must be a bare email address";
  if (typeof outcome !== "string" || !OUTCOMES.includes(outcome as Outcome)) return `outcome must be one of ${OUTCOMES.join(", ")}`;
  if (!Number.isInteger(count) || (count as number) < 1) return "count must be a positive integer";
  return { address: address.toLowerCase(), outcome: outcome as Outcome, count: count as number };
}

export class ResendEvents {
  #target: { url: string; webhook: Webhook } | undefined;
  #forced = new Map<string, { outcome: Outcome; remaining: number }[]>();
  #sent: SentEvent[] = [];
  #closed = false;

  /** Sends events to `target` from now on; null stops sending them. */
  configure(target: EventTarget | null): void {
    this.#target = target ? { url: target.url, webhook: new Webhook(target.secret) } : undefined;
  }

  /** The next `count` sends to `address` end with `outcome`, whatever the address. */
  force(address: string, outcome: Outcome, count: number): void {
    const list = this.#forced.get(address) ?? [];
    list.push({ outcome, remaining: count });
    this.#forced.set(address, list);
  }

  forced(): { address: string; outcome: Outcome; remaining: number }[] {
    return [...this.#forced].flatMap(([address, list]) => list.map((f) => ({ address, ...f })));
  }

  /** Events sent, newest first. */
  sent(): SentEvent[] {
    return this.#sent.slice().reverse();
  }

  clear(): void {
    this.#forced.clear();
    this.#sent = [];
  }

  close(): void {
    this.#closed = true;
  }

  /** What happens to an email: the first recipient with something other than delivery decides. */
  #outcome(email: CapturedEmail): Outcome {
    let outcome: Outcome = "deliver";
    for (const raw of email.to) {
      const address = (/<([^<>]+)>/.exec(raw)?.[1] ?? raw).trim().toLowerCase();
      const queue = this.#forced.get(address);
      const forced = queue?.[0];
      let o: Outcome | undefined;
      if (forced) {
        o = forced.outcome;
        if (--forced.remaining <= 0) queue!.shift();
        if (queue!.length === 0) this.#forced.delete(address);
      } else {
        const name = TEST_ADDRESS.exec(address)?.[1]?.toLowerCase();
        o = name ? BY_TEST_NAME[name] : undefined;
      }
      if (o && o !== "deliver" && outcome === "deliver") outcome = o;
    }
    return outcome;
  }

  /**
   * Decides the email's fate now (so a forced outcome applies to the send that took it) and sends
   * its events in order, in the background. Scheduled emails get no events until they would be sent.
   */
  emailAccepted(email: CapturedEmail): void {
    if (email.scheduled_at) return;
    const types = ["email.sent", ...SEQUENCE[this.#outcome(email)]];
    // `GET /emails/:id` reports where the email ends up at once; the events follow in order.
    email.last_event = LAST_EVENT[types.at(-1)!]!;
    void (async () => {
      for (const type of types) {
        if (this.#closed) return;
        await this.#send(email, type);
      }
    })();
  }

  async #send(email: CapturedEmail, type: string): Promise<void> {
    const now = new Date();
    const body = JSON.stringify({
      type,
      created_at: now.toISOString(),
      data: {
        email_id: email.id,
        from: email.from,
        to: email.to,
        subject: email.subject,
        created_at: email.created_at,
        tags: Object.fromEntries((email.tags ?? []).map((t) => [t.name, t.value])),
        ...(type === "email.bounced"
          ? { bounce: { type: "Permanent", subType: "General", message: "The recipient's mail server permanently rejected the email." } }
          : {}),
      },
    });
    const record: SentEvent = {
      svixId: `msg_${randomUUID().replaceAll("-", "")}`,
      type,
      emailId: email.id,
      to: email.to,
      status: null,
      attempts: 0,
      body,
    };
    this.#sent.push(record);
    if (this.#sent.length > KEEP) this.#sent.shift();
    const target = this.#target;
    if (!target) return;
    for (let attempt = 1; attempt <= ATTEMPTS && !this.#closed; attempt++) {
      record.attempts = attempt;
      // Each attempt is signed anew, as Svix does: same id, fresh timestamp.
      const at = new Date(Math.floor(Date.now() / 1000) * 1000);
      try {
        const res = await fetch(target.url, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            "user-agent": "Svix-Webhooks/1.0 (celeriac mail sink)",
            "svix-id": record.svixId,
            "svix-timestamp": String(at.getTime() / 1000),
            "svix-signature": target.webhook.sign(record.svixId, at, body),
          },
          body,
          signal: AbortSignal.timeout(15_000),
        });
        await res.body?.cancel();
        record.status = res.status;
        if (res.ok) return;
      } catch {
        record.status = null;
      }
      await new Promise((r) => setTimeout(r, BACKOFF_MS * 2 ** (attempt - 1)));
    }
    console.warn(`[celeriac] mail sink: gave up sending ${type} for ${email.id} to ${target.url} (last status ${record.status ?? "none"})`);
  }
}
