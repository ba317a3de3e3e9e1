/**
 * `npm run soak`: N email tasks (default 5,000) through the Worker in workerd, the broker, the real
 * Redis (through the bridge) and the mail sink, under trouble: the sink fails 10 % of sends with
 * 500, 5 % with 429 and accepts-then-drops 3 %; 5 % of messages are delivered 2–3 more times
 * concurrently through the broker's control API; Redis stops answering for 5 s; the Worker is
 * killed mid-run and started again. Then it waits for every task to end and prints enqueued /
 * succeeded / failed / stuck / lost / duplicated, and exits non-zero on any loss, duplicate, stuck
 * task or failed task whose email went out.
 *   npm run soak                                  # N = 5,000, broker at real time
 *   npm run soak -- --n 500 --time-scale 0.05     # a quick look
 * Options: --n, --time-scale (broker waits, 1 = real time), --callers (concurrent enqueuers),
 * --drain (s to wait for the last tasks after enqueueing). Uses REDIS_URL with a key prefix of
 * its own, which it deletes at the end.
 */
import { randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { startBroker } from "../dev/broker/index.ts";
import { startMailSink } from "../dev/mail-sink.ts";
import { startRedisBridge } from "../dev/redis-bridge.ts";
import { type AppProcess, DEV_API_KEY, freePort, stackEnv, startApp } from "../dev/stack.ts";
import { args, int, machine, note, pool, sleep } from "./lib.ts";

const opt = (name: string, fallback: number) => {
  const at = args.indexOf(`--${name}`);
  const v = at >= 0 ? Number(args[at + 1]) : fallback;
  if (!Number.isFinite(v) || v < 0) throw new Error(`[celeriac] soak: --${name} must be a number`);
  return v;
};
const N = opt("n", 5_000);
const TIME_SCALE = opt("time-scale", 1);
const CALLERS = opt("callers", 16);
const DRAIN_S = opt("drain", 900);
const RUN = randomUUID().slice(0, 8);
const PREFIX = `celeriac-soak-${RUN}:`;
const FINAL = new Set(["succeeded", "failed", "cancelled"]);

/** Holds every request while paused: Redis, as the Worker sees it, stops answering. */
async function pausableProxy(target: () => string) {
  let paused: Promise<void> | undefined;
  let resume = () => {};
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    while (paused) await paused;
    try {
      const r = await fetch(target() + (req.url ?? "/"), {
        method: req.method!,
        headers: Object.fromEntries(Object.entries(req.headers).filter(([k]) => k !== "host" && k !== "content-length")) as Record<
          string,
          string
        >,
        ...(req.method === "GET" || req.method === "HEAD" ? {} : { body: Buffer.concat(chunks) }),
      });
      res.writeHead(r.status, { "content-type": r.headers.get("content-type") ?? "application/json" });
      res.end(Buffer.from(await r.arrayBuffer()));
    } catch {
      res.writeHead(502).end();
    }
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    pause() {
      paused = new Promise<void>((ok) => (resume = ok));
    },
    resume() {
      const p = paused;
      paused = undefined;
      resume();
      return p;
    },
    close: () => new Promise<void>((ok) => server.close(() => ok())),
  };
}

const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0)} s`;
note(`soak ${RUN}: N = ${int(N)}, broker time scale ${TIME_SCALE}, ${CALLERS} callers; ${machine()}`);

const [bridge, sink, broker] = await Promise.all([
  startRedisBridge({ port: 0, backend: "redis" }),
  startMailSink({ port: 0 }),
  startBroker({ port: 0, timeScale: TIME_SCALE, log: false }),
]);
const redis = await pausableProxy(() => bridge.url);
const port = await freePort();
const url = `http://127.0.0.1:${port}`;
const env = {
  ...stackEnv({ bridge, sink, broker }, url, { CELERIAC_REDIS_PREFIX: PREFIX }),
  UPSTASH_REDIS_REST_URL: redis.url,
};
let worker: AppProcess | undefined = await startApp("workerd", port, env);
note(`stack up in ${elapsed()}: Worker ${url}, broker ${broker.url}, sink ${sink.url}, Redis via ${redis.url} (prefix ${PREFIX})`);

const api = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
  const r = await fetch(url + path, {
    method,
    headers: { authorization: `Bearer ${DEV_API_KEY}`, ...(body ? { "content-type": "application/json" } : {}), ...headers },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return { status: r.status, body: (await r.json().catch(() => undefined)) as any };
};
const subjectOf = (i: number) => `soak ${RUN} #${i}`;

// --- trouble ----------------------------------------------------------------------------------
const events: string[] = [];
let enqueuedSoFar = 0;
const fault = (mode: "500" | "429" | "accept-then-drop") => sink.inject({ mode, count: 1, ...(mode === "429" ? { retryAfter: 1 } : {}) });
/** Faults for the next sends, mixed: per 100 sends 10 × 500, 5 × 429, 3 × accept-then-drop. */
function injectFaults(sends: number) {
  const batch: ("500" | "429" | "accept-then-drop")[] = [];
  for (let i = 0; i < sends; i++) {
    const x = Math.random();
    if (x < 0.1) batch.push("500");
    else if (x < 0.15) batch.push("429");
    else if (x < 0.18) batch.push("accept-then-drop");
  }
  for (const f of batch) fault(f);
  return batch.length;
}

const ids: (string | undefined)[] = new Array(N);
const messages: (string | undefined)[] = new Array(N);
const copies: Promise<unknown>[] = [];
let duplicatesAsked = 0;

async function disrupt() {
  // Redis stops answering for 5 s once a fifth of the tasks are in.
  while (enqueuedSoFar < N * 0.2) await sleep(50);
  events.push(`${elapsed()}: Redis paused for 5 s`);
  note(events.at(-1)!);
  redis.pause();
  await sleep(5_000);
  await redis.resume();
  // The Worker is killed mid-run once half are in, and started again.
  while (enqueuedSoFar < N * 0.5) await sleep(50);
  events.push(`${elapsed()}: Worker killed`);
  note(events.at(-1)!);
  const w = worker!;
  worker = undefined;
  await w.close();
  worker = await startApp("workerd", port, env);
  events.push(`${elapsed()}: Worker up again`);
  note(events.at(-1)!);
}

// --- enqueue ----------------------------------------------------------------------------------
const trouble = disrupt();
let faultsInjected = injectFaults(100);
await pool(N, CALLERS, async (i) => {
  const payload = { to: "ada@celeriac.dev", subject: subjectOf(i), text: `soak task ${i}` };
  // The same idempotency key on every try: a retried enqueue (Worker down, Redis paused) is one task.
  for (let attempt = 0; ; attempt++) {
    try {
      const r = await api("POST", "/v1/tasks/send-email", { payload }, { "idempotency-key": `soak-${RUN}-${i}` });
      if (r.status === 202 || r.status === 200) {
        ids[i] = r.body.id;
        messages[i] = r.body.messageId;
        break;
      }
      if (r.status < 500) throw new Error(`[celeriac] soak: enqueue ${i} answered ${r.status} ${JSON.stringify(r.body)}`);
    } catch (err) {
      if (err instanceof Error && err.message.startsWith("[celeriac] soak:")) throw err;
    }
    await sleep(Math.min(5_000, 250 * 2 ** attempt));
  }
  enqueuedSoFar++;
  // Each batch covers the next 100 sends; none after the last enqueue, where only the tail's
  // retries would be left to take it (every one of them failing: not the stated mix).
  if (enqueuedSoFar % 100 === 0 && enqueuedSoFar < N) faultsInjected += injectFaults(100);
  if (enqueuedSoFar % 1000 === 0) note(`${elapsed()}: ${int(enqueuedSoFar)} enqueued`);
  // 5 % are delivered 2–3 more times at once, concurrently with QStash's own delivery.
  if (Math.random() < 0.05 && messages[i]) {
    duplicatesAsked++;
    const n = 2 + Math.floor(Math.random() * 2);
    copies.push(
      fetch(`${broker.url}/_broker/messages/${messages[i]}/deliver?copies=${n}`, {
        method: "POST",
        headers: { authorization: `Bearer ${broker.token}` },
      }).catch(() => undefined),
    );
  }
});
const enqueueS = (Date.now() - started) / 1000;
note(`${elapsed()}: all ${int(N)} enqueued; waiting for them to end`);
await trouble;
await Promise.all(copies);

// --- drain and count --------------------------------------------------------------------------
const states = new Map<string, string>();
const deadline = Date.now() + DRAIN_S * 1000;
let open = ids.filter(Boolean) as string[];
while (open.length && Date.now() < deadline) {
  const still: string[] = [];
  await pool(open.length, 16, async (k) => {
    const id = open[k]!;
    const r = await api("GET", `/v1/tasks/${id}`).catch(() => ({ status: 0, body: undefined }));
    const state = r.status === 404 ? "unknown" : (r.body?.state ?? "unreachable");
    states.set(id, state);
    if (!FINAL.has(state) && state !== "unknown") still.push(id);
  });
  open = still;
  if (open.length) {
    note(`${elapsed()}: ${int(open.length)} not finished yet`);
    await sleep(5_000);
  }
}
const drainedS = (Date.now() - started) / 1000;

const sent = new Map<string, number>();
for (const e of sink.emails()) {
  const s = String(e.subject ?? "");
  if (s.startsWith(`soak ${RUN} #`)) sent.set(s, (sent.get(s) ?? 0) + 1);
}
let succeeded = 0,
  failed = 0,
  stuck = 0,
  lost = 0,
  duplicated = 0,
  failedButSent = 0,
  _unknown = 0;
for (let i = 0; i < N; i++) {
  const id = ids[i];
  const emails = sent.get(subjectOf(i)) ?? 0;
  const state = id ? states.get(id) : undefined;
  if (emails > 1) duplicated++;
  if (state === "succeeded") {
    succeeded++;
    if (emails === 0) lost++;
  } else if (state === "failed") {
    failed++;
    if (emails > 0) failedButSent++;
  } else if (state === "unknown" || !id) {
    _unknown++;
    lost++;
  } else stuck++;
}

// What went wrong with the first few tasks that did not succeed, for the person reading the run.
const notOk = ids.filter((id) => id && states.get(id) !== "succeeded").slice(0, 10) as string[];
for (const id of notOk) {
  const r = await api("GET", `/v1/tasks/${id}`).catch(() => undefined);
  const b = r?.body;
  note(
    `${id}: ${b?.state} after ${b?.attempts} attempt(s); ${b?.error ? `${b.error.code}: ${b.error.message}` : "no error"}; history ${JSON.stringify((b?.history ?? []).map((h: any) => h.state + (h.error ? `(${h.error.code})` : "")).reverse())}`,
  );
}

const ok = lost === 0 && duplicated === 0 && stuck === 0 && failedButSent === 0;
const rows: [string, string][] = [
  ["enqueued", int(ids.filter(Boolean).length)],
  ["succeeded", int(succeeded)],
  ["failed", int(failed)],
  ["failed although the email went out", int(failedButSent)],
  ["stuck (not final at the end)", int(stuck)],
  ["lost (no email for a succeeded task, or no record)", int(lost)],
  ["duplicated (more than one email for a task)", int(duplicated)],
];
const report = [
  `### Soak: ${int(N)} email tasks, broker time scale ${TIME_SCALE}`,
  "",
  `Run ${RUN} on ${new Date().toISOString().slice(0, 16)}Z, ${machine()}. All enqueued after ${enqueueS.toFixed(0)} s, all final after ${drainedS.toFixed(0)} s.`,
  `Trouble: ${int(faultsInjected)} sink faults injected (≈10 % 500, 5 % 429, 3 % accept-then-drop of sends), ${int(duplicatesAsked)} messages delivered 2–3 extra times concurrently; ${events.join("; ")}.`,
  "",
  "| outcome | tasks |",
  "| --- | --- |",
  ...rows.map(([k, v]) => `| ${k} | ${v} |`),
  "",
  ok
    ? "Verdict: no task lost, none sent twice, none stuck, none failed after its email went out."
    : "Verdict: FAILED (see the rows above).",
].join("\n");
console.log(report);

// --- clean up ---------------------------------------------------------------------------------
await worker?.close();
const IORedis = (await import("ioredis")).default;
const raw = new IORedis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
for (let cursor = "0"; ; ) {
  const [next, keys] = await raw.scan(cursor, "MATCH", `${PREFIX}*`, "COUNT", 1000);
  if (keys.length) await raw.del(...keys);
  if ((cursor = next) === "0") break;
}
raw.disconnect();
await Promise.allSettled([broker.close(), sink.close(), bridge.close(), redis.close()]);
process.exit(ok ? 0 : 1);
