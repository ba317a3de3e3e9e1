/**
 * Admission control. A message in a queue or with a flow-control key waits in a lane until the
 * lane lets it through:
 * - queue lanes are FIFO; a message holds its slot from first attempt until it is final
 *   (delivered, failed or cancelled), so parallelism 1 means strict order, retries included;
 * - flow-control lanes hold a slot only while an attempt is in flight (parallelism) and count
 *   attempt starts in a sliding window (rate per period; the period is scaled by timeScale).
 * A message with both a queue and a flow-control key obeys its queue only.
 */
import type { QueueRecord, StoredMessage } from "./types.ts";

export interface Lane {
  key: string;
  waiting: StoredMessage[];
  /** Message ids holding a slot. */
  holders: Set<string>;
  queueName?: string;
  parallelism?: number;
  rate?: number;
  periodMs: number;
  launches: number[];
  timer?: NodeJS.Timeout;
}

export class Lanes {
  private lanes = new Map<string, Lane>();
  private getQueue: (name: string) => QueueRecord | undefined;
  private launch: (msg: StoredMessage) => void;
  private timeScale: number;

  constructor(opts: {
    getQueue: (name: string) => QueueRecord | undefined;
    launch: (msg: StoredMessage) => void;
    timeScale: number;
  }) {
    this.getQueue = opts.getQueue;
    this.launch = opts.launch;
    this.timeScale = opts.timeScale;
  }

  laneFor(msg: StoredMessage): Lane | undefined {
    let key: string;
    if (msg.queueName) key = `queue:${msg.queueName}`;
    else if (msg.flowControl) key = `fc:${msg.flowControl.key}`;
    else return undefined;
    let lane = this.lanes.get(key);
    if (!lane) {
      lane = { key, waiting: [], holders: new Set(), periodMs: 1000 * this.timeScale, launches: [] };
      if (msg.queueName) lane.queueName = msg.queueName;
      this.lanes.set(key, lane);
    }
    if (!msg.queueName && msg.flowControl) {
      // The latest message's settings win, as in QStash.
      lane.parallelism = msg.flowControl.parallelism;
      lane.rate = msg.flowControl.rate;
      lane.periodMs = (msg.flowControl.period ?? 1) * 1000 * this.timeScale;
    }
    return lane;
  }

  /** A message is due: launch it now or queue it in its lane. */
  admit(msg: StoredMessage): void {
    const lane = this.laneFor(msg);
    if (!lane) {
      this.launch(msg);
      return;
    }
    if (lane.queueName && lane.holders.has(msg.messageId)) {
      this.launch(msg);
      return;
    }
    lane.waiting.push(msg);
    this.pump(lane);
  }

  /** An attempt ended; `final` when the message will not be attempted again. */
  release(msg: StoredMessage, final: boolean): void {
    const lane = this.laneFor(msg);
    if (!lane) return;
    if (lane.queueName && !final) return;
    lane.holders.delete(msg.messageId);
    this.pump(lane);
  }

  /** Drops a waiting (not in flight) message, e.g. on cancel. */
  remove(msg: StoredMessage): void {
    const lane = this.laneFor(msg);
    if (!lane) return;
    const i = lane.waiting.indexOf(msg);
    if (i >= 0) lane.waiting.splice(i, 1);
    if (lane.queueName && lane.holders.delete(msg.messageId)) this.pump(lane);
  }

  waitingIn(queueName: string): number {
    return this.lanes.get(`queue:${queueName}`)?.waiting.length ?? 0;
  }

  pumpQueue(queueName: string): void {
    const lane = this.lanes.get(`queue:${queueName}`);
    if (lane) this.pump(lane);
  }

  pump(lane: Lane): void {
    if (lane.queueName) {
      const q = this.getQueue(lane.queueName);
      if (q?.paused) return;
      const parallelism = q?.parallelism ?? 1;
      while (lane.waiting.length && lane.holders.size < parallelism) {
        const msg = lane.waiting.shift() as StoredMessage;
        lane.holders.add(msg.messageId);
        this.launch(msg);
      }
      return;
    }
    while (lane.waiting.length) {
      if (lane.parallelism !== undefined && lane.holders.size >= lane.parallelism) return;
      if (lane.rate !== undefined) {
        const now = performance.now();
        while (lane.launches.length && (lane.launches[0] as number) <= now - lane.periodMs) lane.launches.shift();
        if (lane.launches.length >= lane.rate) {
          if (!lane.timer) {
            const wait = (lane.launches[0] as number) + lane.periodMs - now + 1;
            lane.timer = setTimeout(() => {
              lane.timer = undefined;
              this.pump(lane);
            }, wait);
          }
          return;
        }
        lane.launches.push(now);
      }
      const msg = lane.waiting.shift() as StoredMessage;
      lane.holders.add(msg.messageId);
      this.launch(msg);
    }
  }

  close(): void {
    for (const lane of this.lanes.values()) clearTimeout(lane.timer);
  }
}
