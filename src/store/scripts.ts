// Lua run atomically in Redis: each state change is one round trip and cannot interleave with
// another delivery of the same task. Index keys are derived inside the scripts from ARGV[1] (the
// key prefix), which is fine for a single-node store such as Upstash Redis.
//
// Keys: <p>t:<id> (hash: the record), <p>t:<id>:h (list: newest-first history, capped),
// <p>i:all, <p>i:task:<task>, <p>i:state:<state>, <p>i:task:<task>:state:<state> (sorted sets
// scored by creation time, for listing newest first), <p>idem:<key> (idempotency key → id),
// <p>expiry (sorted set: when each record expires), <p>stats:<day> (counters), <p>dead and
// <p>dead:task:<task> (sorted sets of failed tasks not yet replayed or discarded, scored by when
// they failed: the dead letters), <p>tput:<hour> (tasks finished per minute of that hour, since
// the epoch).

import { TASK_STATES } from "./record.ts";

/** Upper bounds (ms) of the run-duration buckets the scripts count into; the last bucket is open. */
export const DURATION_BOUNDS_MS = [10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000];

/** Shared Lua helpers: move a task between the state indexes. */
export const LIB = `
local function indexes(p, task, state)
  return { p .. 'i:state:' .. state, p .. 'i:task:' .. task .. ':state:' .. state }
end
local function reindex(p, id, task, from, to, score)
  if from == to then return end
  if from then for _, k in ipairs(indexes(p, task, from)) do redis.call('ZREM', k, id) end end
  for _, k in ipairs(indexes(p, task, to)) do redis.call('ZADD', k, score, id) end
end
-- Daily statistics ride along with each state change: no extra round trip, no scans.
-- <p>stats:<day> holds <task>:<what> counters; durations go to log-spaced buckets (ms bounds).
local BOUNDS = { ${DURATION_BOUNDS_MS.join(", ")} }
local function count(p, day, task, what, n)
  local k = p .. 'stats:' .. day
  redis.call('HINCRBY', k, task .. ':' .. what, n or 1)
  redis.call('EXPIRE', k, 3456000)
end
local function duration(p, day, task, ms)
  local b = #BOUNDS + 1
  for i, bound in ipairs(BOUNDS) do if ms <= bound then b = i break end end
  count(p, day, task, 'd' .. b)
end
-- Finished tasks per minute, by outcome, for the dashboard's last-hour chart: one small hash per
-- hour (field <minute of the hour>:<s|f>), kept two hours. Two commands, no scans.
local function perMinute(p, now, to)
  local minute = math.floor(now / 60000)
  local k = p .. 'tput:' .. math.floor(minute / 60)
  redis.call('HINCRBY', k, (minute % 60) .. ':' .. string.sub(to, 1, 1), 1)
  redis.call('EXPIRE', k, 7200)
end
local STATES = { ${TASK_STATES.map((s) => `'${s}'`).join(", ")} }
local function undead(p, id, task)
  redis.call('ZREM', p .. 'dead', id)
  redis.call('ZREM', p .. 'dead:task:' .. task, id)
end
local function unindex(p, id, task)
  undead(p, id, task)
  redis.call('ZREM', p .. 'i:all', id)
  redis.call('ZREM', p .. 'i:task:' .. task, id)
  for _, s in ipairs(STATES) do for _, k in ipairs(indexes(p, task, s)) do redis.call('ZREM', k, id) end end
end
-- <p>expiry scores each record by when it expires, so index entries of expired records can be
-- removed a few at a time as new tasks arrive: the indexes stay as large as the live records.
local function expires(p, id, task, at)
  redis.call('ZADD', p .. 'expiry', at, id .. '|' .. task)
end
local function prune(p, now)
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', p .. 'expiry', '-inf', now, 'LIMIT', 0, 20)) do
    local at = string.find(m, '|', 1, true)
    local id, task = string.sub(m, 1, at - 1), string.sub(m, at + 1)
    local left = redis.call('PTTL', p .. 't:' .. id)
    if left > 0 then
      redis.call('ZADD', p .. 'expiry', now + left, m)
    else
      if left == -2 then unindex(p, id, task) end -- gone (-1 would be a record kept for good)
      redis.call('ZREM', p .. 'expiry', m)
    end
  end
end
local function history(hist, entry, ttl)
  redis.call('LPUSH', hist, entry)
  redis.call('LTRIM', hist, 0, 19)
  if ttl then redis.call('EXPIRE', hist, ttl) end
end
`;

/**
 * Creates a record, unless its idempotency key names a task already (tasks enqueued with a key
 * have an id derived from it, so concurrent repeats meet on the same record).
 * KEYS: rec, hist, idem ("" for none). ARGV: prefix, id, task, state, createdAt, ttl (s),
 * idemTtl (s), history entry, day (YYYY-MM-DD, for the statistics), then field/value pairs, the
 * first being 'payloadHash', <SHA-256 of the whole payload> (what is compared: the kept payload
 * may be redacted). Returns {"new"}, {"dup", createdAt} or {"mismatch", task}: the key was used
 * for another task or payload.
 */
export const CREATE = `${LIB}
local rec, hist, idem = KEYS[1], KEYS[2], KEYS[3]
local p, id, task, state, created, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
local have = redis.call('HMGET', rec, 'task', 'payloadHash', 'createdAt', 'recreated')
if have[1] then
  if have[4] then
    -- A delivery outran this write and recreated the record from its message: keep it.
    redis.call('HDEL', rec, 'recreated')
    if idem ~= '' then redis.call('SET', idem, id, 'EX', tonumber(ARGV[7])) end
    return { 'new' }
  end
  -- ARGV[10..11] are 'payloadHash', <hash of the whole payload> (the record may keep it redacted).
  if have[1] ~= task or (have[2] and have[2] ~= ARGV[11]) then return { 'mismatch', have[1] } end
  return { 'dup', have[3] }
end
-- Housekeeping only when a record is really made: a refused repeat changes nothing.
prune(p, created)
if idem ~= '' then redis.call('SET', idem, id, 'EX', tonumber(ARGV[7])) end
redis.call('HSET', rec, 'id', id, 'task', task, 'state', state, 'createdAt', created, 'attempts', 0, unpack(ARGV, 10))
redis.call('EXPIRE', rec, ttl)
history(hist, ARGV[8], ttl)
count(p, ARGV[9], task, 'enqueued')
redis.call('ZADD', p .. 'i:all', created, id)
redis.call('ZADD', p .. 'i:task:' .. task, created, id)
reindex(p, id, task, nil, state, created)
expires(p, id, task, created + ttl * 1000)
return { 'new' }
`;

/**
 * Undoes a CREATE whose publish failed: record, history, indexes (the expiry index too),
 * idempotency key and count.
 * KEYS: rec, hist, idem ("" for none). ARGV: prefix, id, day.
 */
export const DISCARD = `${LIB}
local rec, hist, idem = KEYS[1], KEYS[2], KEYS[3]
local p, id = ARGV[1], ARGV[2]
local task = redis.call('HGET', rec, 'task')
if not task then return 0 end
unindex(p, id, task)
redis.call('ZREM', p .. 'expiry', id .. '|' .. task)
redis.call('DEL', rec, hist)
if idem ~= '' then redis.call('DEL', idem) end
count(p, ARGV[3], task, 'enqueued', -1)
return 1
`;

/**
 * Claims a task for one delivery attempt.
 * KEYS: rec, hist. ARGV: prefix, id, task, now (ms), lease (ms), messageId, ttl (s) for a
 * recreated record, day, then field/value pairs (the first 'payloadHash', <hash>) to recreate it
 * from the message if it is missing (a scheduled run's first delivery creates its record this way).
 * Returns {"run", attempt}, {"skip", state}, {"busy", ms until the lease ends} or {"stale", state}
 * (the message's payload is not the record's).
 */
export const CLAIM = `${LIB}
local rec, hist = KEYS[1], KEYS[2]
local p, id, task, now, lease, mid = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6]
local state = redis.call('HGET', rec, 'state')
local created = tonumber(redis.call('HGET', rec, 'createdAt'))
if not state then
  -- The delivery outran the enqueue's write, or the record was lost: the message is
  -- self-contained, so recreate the record from it (CREATE, if it comes later, keeps this one).
  local ttl = tonumber(ARGV[7])
  state = 'queued'
  created = now
  redis.call('HSET', rec, 'id', id, 'task', task, 'state', state, 'createdAt', now, 'attempts', 0, 'recreated', 1, unpack(ARGV, 9))
  redis.call('EXPIRE', rec, ttl)
  history(hist, '{"at":' .. now .. ',"state":"queued"}', ttl)
  count(p, ARGV[8], task, 'enqueued')
  redis.call('ZADD', p .. 'i:all', now, id)
  redis.call('ZADD', p .. 'i:task:' .. task, now, id)
  reindex(p, id, task, nil, state, now)
  expires(p, id, task, now + ttl * 1000)
elseif (redis.call('HGET', rec, 'payloadHash') or ARGV[10]) ~= ARGV[10] then
  -- A message for this id with another payload: a repeat of an idempotency key with another
  -- payload published it. The record is the task; this message is not it.
  return { 'stale', state }
end
if state == 'succeeded' or state == 'failed' or state == 'cancelled' then return { 'skip', state } end
if state == 'running' then
  local until_ = tonumber(redis.call('HGET', rec, 'leaseUntil') or '0')
  if until_ > now then return { 'busy', tostring(until_ - now) } end
end
local n = redis.call('HINCRBY', rec, 'attempts', 1)
redis.call('HSET', rec, 'state', 'running', 'startedAt', now, 'leaseUntil', now + lease, 'messageId', mid)
reindex(p, id, task, state, 'running', created)
history(hist, '{"at":' .. now .. ',"state":"running","attempt":' .. n .. '}', nil)
count(p, ARGV[8], task, 'attempts')
return { 'run', tostring(n) }
`;

/**
 * Moves a task from one of the allowed states to another.
 * KEYS: rec, hist. ARGV: prefix, id, allowed states (comma-separated), fence (attempt number that
 * must still hold the task, or ""), new state, ttl (s, or "" to keep), history entry, day, now
 * (ms), generation the record must have ("" for any), "1" to leave the statistics alone, then
 * field/value pairs to set. Returns {"ok", previous state}, {"conflict", state} or {"missing"}.
 * Counts final states, retries and run durations.
 */
export const TRANSITION = `${LIB}
local rec, hist = KEYS[1], KEYS[2]
local p, id, allowed, fence, to, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
local day, now, gen = ARGV[8], tonumber(ARGV[9]), ARGV[10]
local f = redis.call('HMGET', rec, 'state', 'task', 'createdAt', 'attempts', 'startedAt', 'gen')
local state = f[1]
if not state then return { 'missing' } end
if not string.find(',' .. allowed .. ',', ',' .. state .. ',', 1, true) then return { 'conflict', state } end
if fence ~= '' and f[4] ~= fence then return { 'conflict', state } end
if gen ~= '' and (f[6] or '0') ~= gen then return { 'conflict', state } end
if ARGV[12] then redis.call('HSET', rec, 'state', to, unpack(ARGV, 12)) else redis.call('HSET', rec, 'state', to) end
redis.call('HDEL', rec, 'leaseUntil')
if ttl then
  redis.call('EXPIRE', rec, ttl)
  expires(p, id, f[2], now + ttl * 1000)
end
reindex(p, id, f[2], state, to, tonumber(f[3]))
if to == 'failed' then
  redis.call('ZADD', p .. 'dead', now, id)
  redis.call('ZADD', p .. 'dead:task:' .. f[2], now, id)
elseif state == 'failed' then
  undead(p, id, f[2])
end
history(hist, ARGV[7], ttl)
if ARGV[11] ~= '1' then
  if to == 'retrying' then count(p, day, f[2], 'retries') end
  if to == 'succeeded' or to == 'failed' or to == 'cancelled' then count(p, day, f[2], to) end
  if fence ~= '' and (to == 'succeeded' or to == 'failed') and f[5] then duration(p, day, f[2], now - tonumber(f[5])) end
  if to == 'succeeded' or to == 'failed' then perMinute(p, now, to) end
end
return { 'ok', state }
`;

/**
 * One page of records, newest first.
 * KEYS: index. ARGV: prefix, before score (ms, "+inf" for the first page), before id ("" for
 * none), limit.
 * Returns a flat list of HGETALL replies (each prefixed by its length) and a next cursor.
 */
export const LIST = `
local idx = KEYS[1]
local p, max, afterId, limit = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local out, n, last, lastScore, offset = {}, 0, nil, nil, 0
while n < limit do
  local batch = redis.call('ZREVRANGEBYSCORE', idx, max, '-inf', 'WITHSCORES', 'LIMIT', offset, limit + 1)
  if #batch == 0 then break end
  for i = 1, #batch, 2 do
    local id, score = batch[i], batch[i + 1]
    -- Skip what the previous page already returned (same millisecond, ids at or after afterId).
    if not (afterId ~= '' and score == max and id >= afterId) then
      local rec = redis.call('HGETALL', p .. 't:' .. id)
      if #rec == 0 then
        redis.call('ZREM', idx, id) -- the record expired: prune its index entry on the way
        offset = offset - 1
      elseif n < limit then
        out[#out + 1] = #rec
        for _, v in ipairs(rec) do out[#out + 1] = v end
        n, last, lastScore = n + 1, id, score
      else
        return { 'more', lastScore, last, out }
      end
    end
  end
  offset = offset + #batch / 2
end
-- One more entry beyond the page means there is a next page.
if last then
  local rest = redis.call('ZREVRANGEBYSCORE', idx, '(' .. lastScore, '-inf', 'LIMIT', 0, 1)
  local same = redis.call('ZRANGEBYSCORE', idx, lastScore, lastScore)
  local tie = false
  for _, id in ipairs(same) do if id < last then tie = true end end
  if #rest > 0 or tie then return { 'more', lastScore, last, out } end
end
return { 'end', '', '', out }
`;
