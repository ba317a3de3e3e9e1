// Dead letters: failed tasks not yet replayed or discarded. TRANSITION keeps the indexes
// (<p>dead, <p>dead:task:<task>, scored by when the task failed); this module reads them.
import { decodeCursor, encodeCursor, type TaskStore } from "./index.ts";
import { Lua } from "./lua.ts";
import { recordsFromFlat, type TaskRecord } from "./record.ts";

/**
 * One page of dead letters, newest failure first, filtered by error code, looking at no more than
 * `budget` entries (so a rare code costs pages, not a scan of everything).
 * KEYS: index. ARGV: prefix, max score ("+inf" or the cursor's), cursor id ("" for none), min
 * score ("-inf" or since), limit, code ("" for any), budget.
 * Returns {"more"|"end", last score, last id, flat HGETALL replies each prefixed by its length}.
 */
const LIST = new Lua(`
local idx = KEYS[1]
local p, max, afterId, min, limit, code, budget = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), ARGV[6], tonumber(ARGV[7])
local out, n, scanned, offset, lastScore, lastId = {}, 0, 0, 0, '', ''
while true do
  local batch = redis.call('ZREVRANGEBYSCORE', idx, max, min, 'WITHSCORES', 'LIMIT', offset, 50)
  if #batch == 0 then return { 'end', '', '', out } end
  for i = 1, #batch, 2 do
    local id, score = batch[i], batch[i + 1]
    -- Skip what the previous page already covered (same millisecond, ids at or after afterId).
    if not (afterId ~= '' and score == max and id >= afterId) then
      if n == limit or scanned == budget then return { 'more', lastScore, lastId, out } end
      scanned, lastScore, lastId = scanned + 1, score, id
      local rec = redis.call('HGETALL', p .. 't:' .. id)
      if #rec == 0 then
        redis.call('ZREM', idx, id) -- expired: prune on the way
        offset = offset - 1
      else
        local keep = code == ''
        if not keep then
          local e = redis.call('HGET', p .. 't:' .. id, 'error')
          keep = e ~= false and e ~= '' and cjson.decode(e).code == code
        end
        if keep then
          out[#out + 1] = #rec
          for _, v in ipairs(rec) do out[#out + 1] = v end
          n = n + 1
        end
      end
    end
  end
  offset = offset + #batch / 2
end
`);

/**
 * Takes a failed task out of the dead letters, noting when (its record stays, still failed).
 * KEYS: record. ARGV: prefix, id, now. Returns {"ok", dlqId or ""}, {"missing"} or {"conflict", state}.
 */
const DISCARD = new Lua(`
local rec = KEYS[1]
local p, id = ARGV[1], ARGV[2]
local f = redis.call('HMGET', rec, 'state', 'task', 'dlqId')
if not f[1] then return { 'missing' } end
if f[1] ~= 'failed' or not redis.call('ZSCORE', p .. 'dead', id) then return { 'conflict', f[1] } end
redis.call('ZREM', p .. 'dead', id)
redis.call('ZREM', p .. 'dead:task:' .. f[2], id)
redis.call('HSET', rec, 'discardedAt', ARGV[3])
return { 'ok', f[3] or '' }
`);

/**
 * Notes the QStash DLQ message of a failed task (from QStash's failure callback), unless the task
 * was re-enqueued since. KEYS: record. ARGV: generation, dlqId. Returns 1 when noted.
 */
const NOTE_DLQ = new Lua(`
local f = redis.call('HMGET', KEYS[1], 'state', 'gen')
if f[1] ~= 'failed' or (f[2] or '0') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'dlqId', ARGV[2])
return 1
`);

export interface DeadQuery {
  task?: string;
  code?: string;
  /** Failed at or after, ms since the epoch. */
  since?: number;
  cursor?: string;
  limit: number;
}

/** Entries looked at per page at most, whatever the filter. */
const BUDGET = 1_000;

/** One page of dead letters, newest failure first. Throws RangeError on a cursor it did not make. */
export async function listDead(store: TaskStore, q: DeadQuery): Promise<{ tasks: TaskRecord[]; cursor?: string }> {
  const idx = store.prefix + (q.task ? `dead:task:${q.task}` : "dead");
  const [score, after] = q.cursor ? decodeCursor(q.cursor) : ["+inf", ""];
  const [reply] = await LIST.run<[string, string, string, (string | number)[]]>(store.redis, [
    { keys: [idx], args: [store.prefix, score, after, q.since === undefined ? "-inf" : q.since, q.limit, q.code ?? "", BUDGET] },
  ]);
  const [more, lastScore, lastId, flat] = reply!;
  return { tasks: recordsFromFlat(flat), ...(more === "more" ? { cursor: encodeCursor(lastScore, lastId) } : {}) };
}

export type DiscardResult = { kind: "ok"; dlqId?: string } | { kind: "missing" } | { kind: "conflict"; state: string };

/** Takes a failed task out of the dead letters (it stays failed); reports its DLQ message id. */
export async function discardDead(store: TaskStore, id: string, now: number): Promise<DiscardResult> {
  const [[kind, value]] = (await DISCARD.run<[string, string?]>(store.redis, [
    { keys: [store.recKey(id)], args: [store.prefix, id, now] },
  ])) as [[string, string?]];
  if (kind === "missing") return { kind };
  if (kind === "conflict") return { kind, state: value ?? "" };
  return { kind: "ok", ...(value ? { dlqId: value } : {}) };
}

/** Notes a failed task's QStash DLQ message, unless the task was re-enqueued since (`gen`). */
export async function noteDlq(store: TaskStore, id: string, gen: number, dlqId: string): Promise<boolean> {
  const [n] = await NOTE_DLQ.run<number>(store.redis, [{ keys: [store.recKey(id)], args: [gen, dlqId] }]);
  return n === 1;
}
