// Type tests of the typed client, checked by `npm run typecheck` (tsconfig.node.json): each
// `@ts-expect-error` line must fail to compile, or the typecheck fails. Imports go through the
// package's own names, as a user's code would.
import { createClient, NotFoundError, type TaskRecord } from "celeriac/client";
import type { tasks } from "celeriac/tasks";

const celeriac = createClient<typeof tasks>({ url: "http://127.0.0.1:8787", apiKey: "k" });

export async function typeChecks() {
  await celeriac.enqueue("send-email", { to: "a@b.co", subject: "Hi", text: "Hello" });
  await celeriac.enqueue(
    "send-email",
    { to: ["a@b.co", "Ann <ann@b.co>"], subject: "Hi", html: "<p>Hi</p>" },
    { delay: "5m", idempotencyKey: "k1", resultTtl: "1d", redact: ["to"], retryDelay: { base: 5, factor: 2, max: 60 } },
  );
  await celeriac.enqueue("webhook", { url: "https://example.com/hook", body: { json: { ok: true } } });

  // @ts-expect-error a payload without its subject is no send-email payload
  await celeriac.enqueue("send-email", { to: "a@b.co", text: "Hello" });
  // @ts-expect-error `to` must be an address or a list of them
  await celeriac.enqueue("send-email", { to: 42, subject: "Hi", text: "Hello" });
  // @ts-expect-error a field the schema does not know
  await celeriac.enqueue("send-email", { to: "a@b.co", subject: "Hi", text: "Hello", attachment: "x" });
  // @ts-expect-error no task of this name
  await celeriac.enqueue("send-mail", { to: "a@b.co", subject: "Hi", text: "Hello" });
  // @ts-expect-error an unknown option
  await celeriac.enqueue("send-email", { to: "a@b.co", subject: "Hi", text: "Hello" }, { dealy: 5 });

  await celeriac.enqueueMany([
    { task: "send-email", payload: { to: "a@b.co", subject: "Hi", text: "Hello" } },
    { task: "webhook", payload: { url: "https://example.com/hook" }, delay: 10 },
  ]);
  // @ts-expect-error a batch entry's payload is checked against its own task
  await celeriac.enqueueMany([{ task: "webhook", payload: { to: "a@b.co", subject: "Hi", text: "Hello" } }]);

  const record: TaskRecord = await celeriac.wait("t_x", { timeout: 10_000 });
  const state: "succeeded" | "failed" | "cancelled" | "queued" | "scheduled" | "running" | "retrying" = record.state;
  try {
    await celeriac.get("t_x");
  } catch (err) {
    if (err instanceof NotFoundError) return err.code satisfies string;
  }
  return state;
}

// Without task definitions the client still works, untyped.
export const untyped = () => createClient({ url: "http://127.0.0.1:8787" }).enqueue("anything", { any: "thing" });
