// The one enqueue path: the single and batch routes, ctx.enqueue (and, through the same
// publishing, schedules and API retries) validate here and enqueue through enqueue-core.
import * as v from "valibot";
import { CALLBACK_TASK, callbackIssues } from "./callback-option.ts";
import { type Enqueued, type EnqueueItem, enqueue } from "./enqueue-core.ts";
import { ApiError, type Issue, PermanentError } from "./errors.ts";
import { payloadProblem } from "./http.ts";
import { BatchBody, BatchItem, EnqueueBody, joinIssues, type Options, parseOptions } from "./options.ts";
import { checkPayload, toIssues } from "./registry.ts";
import { type Relay, taskEnv } from "./relay.ts";

export type { Enqueued, EnqueueItem } from "./enqueue-core.ts";

/**
 * Validates one enqueue's options and payload into an {@link EnqueueItem}, or returns its issues
 * (paths under `path`). A task whose own variables are missing answers 503 naming them.
 */
export async function validate(
  relay: Relay,
  name: string,
  o: Options,
  path: string,
): Promise<{ item: EnqueueItem; output: unknown } | { issues: Issue[]; unknownTask?: true }> {
  const def = relay.registry.callable(name);
  if (!def) {
    return { issues: [{ path: path ? `${path}.task` : "task", message: `no task named "${name}"` }], unknownTask: true };
  }
  const at = path ? `${path}.payload` : "payload";
  // Checked before the schema: a payload that cannot be serialised must never reach a publish.
  const bad = payloadProblem(o.payload);
  if (bad) return { issues: [{ path: at, message: bad }] };
  const checked = await checkPayload(def, o.payload, taskEnv(relay, def), at);
  // The callback URL meets the same guard as the callback task that will call it.
  const issues = [
    ...(checked.ok ? [] : checked.issues),
    ...(o.callback ? callbackIssues(o.callback, callbackAllowHosts(relay), path ? `${path}.callback` : "callback") : []),
  ];
  if (!checked.ok || issues.length) return { issues };
  return {
    item: {
      def,
      // The raw payload travels: the runner parses it again, so transforms run where the work is.
      payload: o.payload,
      ...(o.delay !== undefined ? { delay: o.delay } : {}),
      ...(o.notBefore !== undefined ? { notBefore: o.notBefore } : {}),
      ...(o.retries !== undefined ? { retries: o.retries } : {}),
      ...(o.timeout !== undefined ? { timeout: Math.ceil(o.timeout) } : {}),
      ...(o.retryDelay !== undefined ? { retryDelay: o.retryDelay } : {}),
      ...(o.resultTtl !== undefined ? { resultTtl: o.resultTtl } : {}),
      ...(o.redact !== undefined ? { redact: o.redact } : {}),
      ...(o.idempotencyKey !== undefined ? { idempotencyKey: o.idempotencyKey } : {}),
      ...(o.callback !== undefined ? { callback: o.callback } : {}),
    },
    output: checked.output,
  };
}

/** The hosts a callback may reach although private: the callback task's allow-list. */
function callbackAllowHosts(relay: Relay): string[] {
  const def = relay.registry.get(CALLBACK_TASK);
  if (!def)
    throw new ApiError(503, {
      code: "misconfigured",
      message: `[celeriac] this app does not serve the "${CALLBACK_TASK}" task, so callbacks cannot be sent`,
    });
  return (taskEnv(relay, def) as { CELERIAC_WEBHOOK_ALLOW_HOSTS: string[] }).CELERIAC_WEBHOOK_ALLOW_HOSTS;
}

/**
 * `POST /v1/tasks/:name`: validates `body` (options and payload) and enqueues one task. A key
 * first used for another task or payload is a 409.
 */
export async function enqueueOne(relay: Relay, scope: string, name: string, body: unknown): Promise<Enqueued> {
  if (!relay.registry.callable(name)) {
    throw new ApiError(404, { code: "unknown_task", message: `no task named "${name}"; known: ${relay.registry.names.join(", ")}` });
  }
  const r = await validate(relay, name, parseOptions(EnqueueBody, body), "");
  if ("issues" in r)
    throw new ApiError(422, { code: "invalid_payload", message: `the payload does not fit task "${name}"`, issues: r.issues });
  const [e] = await enqueue(relay, scope, [r.item]);
  if (e!.conflict) throw new ApiError(409, { ...e!.conflict, extra: { id: e!.id } });
  return e!;
}

/** `POST /v1/tasks`: every entry is validated first (issues by index); any problem enqueues none. */
export async function enqueueBatch(relay: Relay, scope: string, body: unknown): Promise<Enqueued[]> {
  const { tasks: raw } = parseOptions(BatchBody, body);
  const issues: Issue[] = [];
  const items: EnqueueItem[] = [];
  for (const [i, entry] of raw.entries()) {
    const parsed = v.safeParse(BatchItem, entry);
    if (!parsed.success) {
      issues.push(...toIssues(parsed.issues, `tasks.${i}`));
      continue;
    }
    const { task, ...options } = parsed.output;
    const r = await validate(relay, task, options, `tasks.${i}`);
    if ("issues" in r) issues.push(...r.issues);
    else items.push(r.item);
  }
  if (issues.length) {
    throw new ApiError(422, { code: "invalid_batch", message: `${issues.length} problem(s) in the batch; nothing was enqueued`, issues });
  }
  return enqueue(relay, scope, items);
}

/**
 * `POST /v1/public/:name`: a browser's payload (no options: the task's defaults hold). `gate`
 * sees the parsed payload after validation and before anything is written (limits, bot check);
 * when it throws, nothing is enqueued. Public calls share one idempotency scope no key can meet.
 */
export async function enqueuePublic(
  relay: Relay,
  name: string,
  payload: unknown,
  gate: (output: unknown) => Promise<void>,
): Promise<Enqueued> {
  const r = await validate(relay, name, { payload }, "");
  if ("issues" in r)
    throw new ApiError(422, { code: "invalid_payload", message: `the payload does not fit task "${name}"`, issues: r.issues });
  await gate(r.output);
  const [e] = await enqueue(relay, ":public", [r.item]);
  return e!;
}

/**
 * Enqueues one of celeriac's own tasks (e.g. a callback) through the same path, keyed by
 * `idempotencyKey` in `scope`: a repeat returns the first task. Its payload is checked as any.
 */
export async function enqueueInternal(
  relay: Relay,
  name: string,
  payload: unknown,
  scope: string,
  idempotencyKey: string,
): Promise<Enqueued> {
  const def = relay.registry.get(name);
  if (!def) throw new Error(`[celeriac] this app does not serve the "${name}" task`);
  const checked = await checkPayload(def, payload, taskEnv(relay, def));
  if (!checked.ok) throw new PermanentError(`enqueue "${name}": ${joinIssues(checked.issues)}`, "invalid_follow_up");
  const [e] = await enqueue(relay, scope, [{ def, payload, idempotencyKey }]);
  return e!;
}

/**
 * `ctx.enqueue`: a follow-up from inside a task, checked like an API call. A bad one is a bug in
 * the task, so it fails for good; its key shares one scope that no API key name can meet.
 */
export async function enqueueFollowUp(relay: Relay, name: string, payload: unknown, options: object): Promise<Enqueued> {
  const body = v.safeParse(EnqueueBody, { ...options, payload });
  const r = body.success ? await validate(relay, name, body.output, "") : { issues: toIssues(body.issues) };
  if ("issues" in r) throw new PermanentError(`enqueue "${name}": ${joinIssues(r.issues)}`, "invalid_follow_up");
  // ":" cannot occur in an API key name, so this scope never meets a caller's.
  const [e] = await enqueue(relay, ":task", [r.item]);
  return e!;
}
