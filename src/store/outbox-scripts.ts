// Lua for coalesced tasks (src/batch.ts has the design). Keys, besides the task records:
// <p>ob:<outbox> (sorted set: ids of items waiting for a batch, scored by when a flush may take
// them: when they joined, or when the retry of one that failed alone is due),
// <p>ob:<outbox>:arm (string `<window>@<ms>`: the window whose flush is scheduled and when it is
// due; a safety TTL past that), <p>b:<batch> (hash: `items` (comma-joined ids, fixed when the
// batch is formed), `attempt`, `leaseUntil`). An item record holds `batch`: the batch that last took it.

import { LIB } from "./scripts.ts";

/** Reading and setting the armed window (an arm written before due times were kept reads as due at once). */
const ARM = `
local function armed(arm)
  local v = redis.call('GET', arm)
  if not v then return nil, nil end
  local w, at = string.match(v, '^([^@]+)@?(%d*)$')
  return w, tonumber(at) or 0
end
local function arm_at(arm, w, at, now, ttl)
  redis.call('SET', arm, w .. '@' .. string.format('%d', at), 'EX', ttl + math.ceil(math.max(0, at - now) / 1000))
end
`;

/**
 * An item's delivery joins its outbox, atomically with its claim on the task.
 * KEYS: rec, hist, outbox, arm. ARGV: prefix, id, task, now (ms), ttl (s) for a recreated record,
 * day, arm TTL (s), a fresh window id, due (ms: when a flush may take the item), flush at (ms: when
 * its flush should run), rejoin ("1": a batch puts back an item that failed alone, else "0": the
 * item's delivery), then the record's field/value pairs (`payloadHash` first, as the store writes
 * them), which recreate it when it is missing.
 * Returns {"armed", window, due ms}: publish that window's flush (QStash deduplicates a repeat);
 * {"joined", window}: it is already scheduled; {"skip", state}; {"stale", state}; {"solo", state}:
 * the task was already attempted on its own (its side effects keyed by its id, not a batch's),
 * so it stays on that path.
 */
export const JOIN = `${LIB}${ARM}
local rec, hist, outbox, arm = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local p, id, task, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local due, flushAt = tonumber(ARGV[9]), tonumber(ARGV[10])
local state = redis.call('HGET', rec, 'state')
if not state then
  -- The delivery outran the enqueue's write: recreate the record from the message, as CLAIM does.
  local ttl = tonumber(ARGV[5])
  state = 'queued'
  redis.call('HSET', rec, 'id', id, 'task', task, 'state', state, 'createdAt', now, 'attempts', 0, 'recreated', 1, unpack(ARGV, 12))
  redis.call('EXPIRE', rec, ttl)
  history(hist, '{"at":' .. now .. ',"state":"queued"}', ttl)
  count(p, ARGV[6], task, 'enqueued')
  redis.call('ZADD', p .. 'i:all', now, id)
  redis.call('ZADD', p .. 'i:task:' .. task, now, id)
  reindex(p, id, task, nil, state, now)
  expires(p, id, task, now + ttl * 1000)
elseif (redis.call('HGET', rec, 'payloadHash') or ARGV[13]) ~= ARGV[13] then
  return { 'stale', state }
end
if state ~= 'succeeded' and state ~= 'failed' and state ~= 'cancelled' and not redis.call('HGET', rec, 'batch')
  and tonumber(redis.call('HGET', rec, 'attempts') or '0') > 0 then
  return { 'solo', state }
end
-- Running: a batch holds it (its flush retries it); final: nothing to do. Either way, acknowledged.
if state ~= 'queued' and state ~= 'scheduled' and state ~= 'retrying' then return { 'skip', state } end
-- Retrying and out of its outbox: a batch holds it for its call's retry, whose body carries it.
-- Only that batch may put it back (it failed alone); a redelivery of its own message that did
-- would have a later batch send it too, under another key.
if state == 'retrying' and ARGV[11] ~= '1' and not redis.call('ZSCORE', outbox, id) then return { 'skip', state } end
-- NX: a redelivery never moves an item's due time (a waiting retry keeps its backoff).
local fresh = redis.call('ZADD', outbox, 'NX', due, id)
-- Queued again, yet due later: it was cancelled while it waited for a retry and has been
-- re-enqueued since (its new message's join); that backoff is no longer its own.
if fresh == 0 and state ~= 'retrying' and tonumber(redis.call('ZSCORE', outbox, id)) > due then
  redis.call('ZADD', outbox, 'XX', due, id)
end
local w, at = armed(arm)
-- No flush scheduled, or only one due later than this item's (armed for a retry due later).
if not w or at > flushAt then
  arm_at(arm, ARGV[8], flushAt, now, tonumber(ARGV[7]))
  return { 'armed', ARGV[8], string.format('%d', flushAt) }
end
-- A redelivery publishes the window's flush again, in case the first delivery died before it did.
if fresh == 0 then return { 'armed', w, string.format('%d', at) } end
return { 'joined', w }
`;

/**
 * A flush takes its batch: the first run of a window pops up to maxSize waiting items that are
 * due and fixes them as the batch; a retry finds the batch as it was. Claims every item the batch
 * still owns. Arms the next window when items are left: due at once when a full batch is due,
 * else maxWaitMs after the earliest is due.
 * KEYS: outbox, arm, batch. ARGV: prefix, now (ms), maxSize, item lease (ms), window, batch TTL
 * (s), day, flush message id, a fresh window id, arm TTL (s), batch lease (ms), batch id, maxWaitMs.
 * Returns {"busy", ms} while another copy of this flush runs, else {"run", attempt, next window
 * ("" for none), when its flush is due (ms, "" for none), waiting count, then per item: id,
 * attempt (0 when it is not claimed: final, cancelled, back in the outbox or in a later batch),
 * payload, options}.
 */
export const TAKE = `${LIB}${ARM}
local outbox, arm, batch = KEYS[1], KEYS[2], KEYS[3]
local p, now, maxSize, lease, w = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local day, mid, bid = ARGV[7], ARGV[8], ARGV[12]
local ids, attempt = {}, 1
local items = redis.call('HGET', batch, 'items')
if items then
  local until_ = tonumber(redis.call('HGET', batch, 'leaseUntil') or '0')
  if until_ > now then return { 'busy', tostring(until_ - now) } end
  for id in string.gmatch(items, '[^,]+') do ids[#ids + 1] = id end
  attempt = redis.call('HINCRBY', batch, 'attempt', 1)
else
  if armed(arm) == w then redis.call('DEL', arm) end
  while #ids < maxSize do
    -- Only items that are due: a retry waits out its backoff in the outbox.
    local popped = redis.call('ZRANGEBYSCORE', outbox, '-inf', now, 'LIMIT', 0, maxSize - #ids)
    if #popped == 0 then break end
    redis.call('ZREM', outbox, unpack(popped))
    for _, id in ipairs(popped) do
      local s = redis.call('HGET', p .. 't:' .. id, 'state')
      if s == 'queued' or s == 'scheduled' or s == 'retrying' then
        ids[#ids + 1] = id
        redis.call('HSET', p .. 't:' .. id, 'batch', bid)
      end
    end
  end
  if #ids > 0 then
    redis.call('HSET', batch, 'items', table.concat(ids, ','), 'attempt', 1)
    redis.call('EXPIRE', batch, tonumber(ARGV[6]))
  end
end
if #ids > 0 then redis.call('HSET', batch, 'leaseUntil', now + tonumber(ARGV[11])) end
local out = {}
for _, id in ipairs(ids) do
  local rec = p .. 't:' .. id
  local f = redis.call('HMGET', rec, 'state', 'task', 'createdAt', 'payload', 'options', 'batch')
  local s, n = f[1], 0
  -- Running: an earlier run of this batch died (its lease has passed). Back in the outbox: it
  -- failed alone and waits for a later batch (after its backoff), not for a retry of this one
  -- (only a retry need look: a batch formed by this call has just taken its items out).
  if f[6] == bid and (s == 'queued' or s == 'scheduled' or s == 'retrying' or s == 'running')
    and not (items and redis.call('ZSCORE', outbox, id)) then
    n = redis.call('HINCRBY', rec, 'attempts', 1)
    redis.call('HSET', rec, 'state', 'running', 'startedAt', now, 'leaseUntil', now + lease, 'messageId', mid)
    reindex(p, id, f[2], s, 'running', tonumber(f[3]))
    history(rec .. ':h', '{"at":' .. now .. ',"state":"running","attempt":' .. n .. '}', nil)
    count(p, day, f[2], 'attempts')
  end
  out[#out + 1] = id
  out[#out + 1] = tostring(n)
  out[#out + 1] = f[4] or 'null'
  out[#out + 1] = f[5] or '{}'
end
-- Items still waiting get the next window's flush (the one already armed, unless it is due
-- later than needed, or a new one).
local left, nextW, nextAt = redis.call('ZCARD', outbox), '', ''
if left > 0 then
  local ready = redis.call('ZCOUNT', outbox, '-inf', now)
  local earliest = tonumber(redis.call('ZRANGE', outbox, 0, 0, 'WITHSCORES')[2])
  local due = now
  if ready < maxSize then due = math.max(now, earliest + tonumber(ARGV[13])) end
  local aw, at = armed(arm)
  if aw and at <= due then
    nextW, nextAt = aw, at
  else
    nextW, nextAt = ARGV[9], due
    arm_at(arm, nextW, due, now, tonumber(ARGV[10]))
  end
  nextAt = string.format('%d', nextAt)
end
return { 'run', tostring(attempt), nextW, nextAt, tostring(left), unpack(out) }
`;

/**
 * Lets a rate-limited flush's next message take the batch at once: clears the batch lease.
 * KEYS: batch. ARGV: none.
 */
export const RELEASE = `
redis.call('HDEL', KEYS[1], 'leaseUntil')
return 1
`;
