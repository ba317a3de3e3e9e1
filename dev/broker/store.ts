/**
 * The broker's state and its persistence: one JSON file written atomically (temp file + rename),
 * debounced after changes and flushed on close. Bodies are stored as base64.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { DlqEntry, LogEvent, QueueRecord, ScheduleRecord, StoredMessage } from "./types.ts";

const ARCHIVE_LIMIT = 2_000;
const EVENT_LIMIT = 20_000;
const SAVE_DEBOUNCE_MS = 100;

export interface LoggedEvent extends LogEvent {
  seq: number;
}

export function newId(prefix: string): string {
  return `${prefix}_${randomBytes(18).toString("base64url").replace(/[-_]/g, "x")}`;
}

function replacer(this: Record<string, unknown>, key: string, value: unknown): unknown {
  const raw = this[key];
  return Buffer.isBuffer(raw) ? { $b64: raw.toString("base64") } : value;
}

function reviver(_key: string, value: unknown): unknown {
  if (value && typeof value === "object" && "$b64" in value && typeof value.$b64 === "string") {
    return Buffer.from(value.$b64, "base64");
  }
  return value;
}

export class Store {
  /** Messages not yet final (waiting, delayed, retrying, in flight). */
  messages = new Map<string, StoredMessage>();
  /** Recently finished messages, so the control API can redeliver them. */
  archive = new Map<string, StoredMessage>();
  dlq = new Map<string, DlqEntry>();
  schedules = new Map<string, ScheduleRecord>();
  queues = new Map<string, QueueRecord>();
  dedup = new Map<string, { messageId: string; url: string; expiresAt: number }>();
  events: LoggedEvent[] = [];
  seq = 0;
  private eventSeq = 0;
  private dlqSeq = 0;
  private saveTimer: NodeJS.Timeout | undefined;
  private saving: Promise<void> | undefined;
  private file: string | undefined;

  constructor(dataDir?: string) {
    if (dataDir) {
      mkdirSync(dataDir, { recursive: true });
      this.file = join(dataDir, "qstash-broker.json");
    }
  }

  /** Loads persisted state; returns false when there was none. */
  load(): boolean {
    if (!this.file) return false;
    let text: string;
    try {
      text = readFileSync(this.file, "utf8");
    } catch {
      return false;
    }
    const data = JSON.parse(text, reviver) as Record<string, unknown>;
    const entries = <T>(k: string) => (Array.isArray(data[k]) ? (data[k] as Array<[string, T]>) : []);
    this.messages = new Map(entries<StoredMessage>("messages"));
    this.archive = new Map(entries<StoredMessage>("archive"));
    this.dlq = new Map(entries<DlqEntry>("dlq"));
    this.schedules = new Map(entries<ScheduleRecord>("schedules"));
    this.queues = new Map(entries<QueueRecord>("queues"));
    this.dedup = new Map(entries("dedup"));
    this.seq = typeof data.seq === "number" ? data.seq : 0;
    this.dlqSeq = typeof data.dlqSeq === "number" ? data.dlqSeq : 0;
    return true;
  }

  nextDlqId(): string {
    return `${Date.now()}-${this.dlqSeq++}`;
  }

  archiveMessage(msg: StoredMessage): void {
    this.messages.delete(msg.messageId);
    this.archive.set(msg.messageId, msg);
    if (this.archive.size > ARCHIVE_LIMIT) {
      const oldest = this.archive.keys().next().value;
      if (oldest !== undefined) this.archive.delete(oldest);
    }
  }

  event(e: LogEvent): void {
    this.events.push({ ...e, seq: this.eventSeq++ });
    if (this.events.length > EVENT_LIMIT * 1.25) this.events.splice(0, this.events.length - EVENT_LIMIT);
  }

  /** Marks state dirty: a save follows shortly (only with a dataDir). */
  changed(): void {
    if (!this.file || this.saveTimer) return;
    this.saveTimer = setTimeout(() => {
      this.saveTimer = undefined;
      void this.save();
    }, SAVE_DEBOUNCE_MS);
    this.saveTimer.unref();
  }

  private serialize(): string {
    const now = Date.now();
    for (const [k, v] of this.dedup) if (v.expiresAt <= now) this.dedup.delete(k);
    return JSON.stringify(
      {
        version: 1,
        savedAt: now,
        seq: this.seq,
        dlqSeq: this.dlqSeq,
        messages: [...this.messages],
        archive: [...this.archive],
        dlq: [...this.dlq],
        schedules: [...this.schedules],
        queues: [...this.queues],
        dedup: [...this.dedup],
      },
      replacer,
    );
  }

  private async save(): Promise<void> {
    if (!this.file) return;
    await this.saving;
    const file = this.file;
    const tmp = `${file}.${process.pid}.tmp`;
    this.saving = (async () => {
      await writeFile(tmp, this.serialize());
      await rename(tmp, file);
    })().catch((e: unknown) => console.error(`[celeriac:broker] could not persist state: ${String(e)}`));
    await this.saving;
  }

  /** Synchronous final write, used on close and on signals. */
  flushSync(): void {
    if (!this.file) return;
    clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
    const tmp = `${this.file}.${process.pid}.final.tmp`;
    writeFileSync(tmp, this.serialize());
    renameSync(tmp, this.file);
  }

  async flush(): Promise<void> {
    await this.saving;
    this.flushSync();
  }
}
