import type { Client, FlowControl as QStashFlowControl } from "@upstash/qstash";
import type { Config } from "./env.ts";
import type { TaskMessage } from "./messages.ts";
import type { FlowControl } from "./task.ts";

/** Path QStash delivers tasks to, the one batch flushes go to, and the one its failure callback calls. */
export const DELIVER_PATH = "/qstash/deliver";
export const FLUSH_PATH = "/qstash/flush";
export const FAILURE_PATH = "/qstash/failure";

/** Extra seconds QStash waits beyond the task's own timeout, so our abort answers first. */
export const TIMEOUT_GRACE_S = 10;

/** One publish: the message and how QStash should deliver it. */
export interface Publish {
  message: TaskMessage;
  flowControl?: FlowControl;
  /** QStash-side deduplication id (guards concurrent repeats of one idempotency key). */
  deduplicationId?: string | undefined;
  /** Seconds from now (fractions kept); wins over the message's `runAt`. */
  delay?: number;
}

/**
 * How QStash delivers a task, the same for a published message and a schedule's runs: where to,
 * how often and how long to retry, where to report giving up, and the task's flow control.
 */
export function deliveryOptions(
  config: Config,
  task: string,
  options: Omit<TaskMessage["options"], "resultTtl">,
  fc: FlowControl | undefined,
) {
  return {
    retries: options.retries,
    ...(options.retryDelay ? { retryDelay: options.retryDelay } : {}),
    timeout: options.timeout + TIMEOUT_GRACE_S,
    failureCallback: config.publicUrl + FAILURE_PATH,
    ...qstashFlowControl(task, fc),
  };
}

function request(config: Config, p: Publish) {
  const m = p.message;
  return {
    url: config.publicUrl + DELIVER_PATH,
    body: m,
    // Attempts earlier messages of this task already spent (before a rate-limit wait) count too.
    ...deliveryOptions(config, m.task, { ...m.options, retries: Math.max(0, m.options.retries - (m.spent ?? 0)) }, p.flowControl),
    // The label lets a cancel find the message before celeriac has seen its message id.
    label: m.id,
    ...(p.delay !== undefined ? { delay: qstashDelay(p.delay) } : m.runAt > m.createdAt ? { notBefore: Math.ceil(m.runAt / 1000) } : {}),
    ...(p.deduplicationId ? { deduplicationId: p.deduplicationId } : {}),
  };
}

/**
 * `Upstash-Delay` for a wait in seconds, fractions kept ("0.2s"; QStash reads Go durations). The
 * client would round a number to whole seconds, which turns a 200 ms wait into none.
 */
export const qstashDelay = (seconds: number) => `${Math.max(0, Math.round(seconds * 1000)) / 1000}s` as `${bigint}s`;

/** A task's flow control in the client's terms (the key defaults to the task name). */
function qstashFlowControl(task: string, fc: FlowControl | undefined): { flowControl?: QStashFlowControl } {
  if (!fc || !(fc.parallelism || fc.rate)) return {};
  return {
    flowControl: {
      key: fc.key ?? task,
      ...(fc.parallelism ? { parallelism: fc.parallelism } : {}),
      ...(fc.rate ? { rate: fc.rate, period: fc.period ?? 1 } : {}),
    } as QStashFlowControl,
  };
}

/** Publishes one message, or many in one batch call; returns each QStash message id. */
export async function publish(qstash: Client, config: Config, items: Publish[]): Promise<{ messageId: string; deduplicated: boolean }[]> {
  if (items.length === 1) {
    const r = (await qstash.publishJSON(request(config, items[0]!))) as { messageId: string; deduplicated?: boolean };
    return [{ messageId: r.messageId, deduplicated: r.deduplicated === true }];
  }
  const rs = (await qstash.batchJSON(items.map((p) => request(config, p)))) as { messageId: string; deduplicated?: boolean }[];
  return rs.map((r) => ({ messageId: r.messageId, deduplicated: r.deduplicated === true }));
}

/** Cancels every pending QStash message of a task (found by its label). */
export async function cancelMessages(qstash: Client, taskId: string): Promise<number> {
  const { cancelled } = await qstash.messages.cancel({ filter: { label: taskId } });
  return cancelled;
}

/** Cancels one QStash message. */
export async function cancelMessage(qstash: Client, messageId: string): Promise<void> {
  await qstash.messages.cancel(messageId);
}
