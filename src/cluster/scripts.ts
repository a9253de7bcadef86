/**
 * The Lua the Redis store runs. Each script is one atomic step on the Redis server, timed by Redis's own
 * clock (TIME), so replicas with skewed clocks still share one bucket fairly.
 *
 * Keys per bucket (prefix:{project}:bucketKey:...; the project in braces is the Redis Cluster hash tag, so
 * every key one script touches is in one slot):
 *  - `tokens`  hash { tokens, at }: the token count at Redis time `at` (ms), refilled lazily; it may be
 *              negative (a debt) after a 429 (see `cap` below).
 *  - `leases`  sorted set: one member per call in flight (the lease id), scored by its expiry (ms).
 *  - `limits`  hash { rate, concurrency, changedAt }: the effective limits (adaptive), written by
 *              publishEffective; absent while they are the configured ones.
 *  - `waiting` sorted set: apps refused here that still wait (see TAKE), scored by when the mark lapses.
 *  - `tags`    hash: fair-queueing tags per app and virtual time per priority (see TAKE).
 * Every write sets a PEXPIRE so the keys of unused buckets go away.
 *
 * A `cap` lowers a bucket's tokens to at most that value now: the adaptive limits lower the local
 * bucket's tokens when CDF answers 429 (its bucket is empty), and every replica's shared bucket follows.
 */

/** Redis 3.2–4 need effect replication switched on to write after TIME; later versions always do it. */
const PREAMBLE = `if redis.replicate_commands then pcall(redis.replicate_commands) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
`;

/** tokensAt(key, rate, burst): the bucket's tokens now (full when it has no state yet). */
const TOKENS_AT = `local function tokensAt(key, rate, burst)
  local st = redis.call('HMGET', key, 'tokens', 'at')
  local tok = tonumber(st[1])
  if tok == nil then return burst end
  local at = tonumber(st[2]) or now
  if now > at then tok = tok + (now - at) * rate / 1000 end
  if tok > burst then tok = burst end
  return tok
end
`;

/**
 * All or nothing over a request's buckets, in fair order across every replica.
 * KEYS: per bucket i, KEYS[5i-4] tokens, KEYS[5i-3] leases, KEYS[5i-2] limits, KEYS[5i-1] waiting,
 *       KEYS[5i] tags.
 * ARGV: [1] lease id, [2] leaseMs, [3] minimum key TTL (ms), [4] app, [5] its weight, [6] its priority,
 *       [7] replica id, [8] how long a waiting mark lasts at least unless renewed (ms), [9] the 1-based index of the
 *       bucket where more of this app's calls wait at this replica after this one, or 0, then per
 *       bucket i its starting ARGV[6i+4] rate, ARGV[6i+5] burst, ARGV[6i+6] concurrency, ARGV[6i+7] a cap
 *       on its tokens or '' for none, and the highest ARGV[6i+8] rate and ARGV[6i+9] concurrency learning
 *       may take it to.
 * Returns { blocked, waitMs, then per bucket: effective rate, effective concurrency, tokens left, calls
 * taken from it by every replica (its `tokens` hash counts them; -1 when this take was refused) }:
 * blocked is 0 when a token and a lease were taken in every bucket, else the 1-based index of the bucket
 * that said no, with waitMs until it may say yes, or -1 when it has no free slot. Effective limits are
 * the limits hash (the starting figures while it has none) capped by the highest ones, passed back as
 * they were written (no float rounding).
 *
 * Fairness (start-time fair queueing with strict priority, per bucket): `tags` holds each app's finish
 * tag `F:prio|app` and each priority's virtual time `V:prio`; an app's start tag is max(F, V), and taking
 * moves F to it + 1/weight and V to it, but not past the start tag of a flow waiting at another replica. `waiting` marks the (priority, weight, app, replica) that were
 * refused here and still wait, scored by when the mark lapses (a dead replica's marks lapse by
 * themselves). A take must leave a slot for every other replica with a waiting mark ahead of it (a
 * higher priority, or the same priority with a smaller start tag), and the tokens that replica's flow
 * is owed before this one (a replica orders its own apps itself). A
 * refused take marks its app waiting at the bucket that said no; a successful one removes its marks,
 * but renews the one where more of its calls wait (so that its place holds between two calls).
 */
export const TAKE = `${PREAMBLE}${TOKENS_AT}
local n = #KEYS / 5
local leaseMs = tonumber(ARGV[2])
local minTtl = tonumber(ARGV[3])
local app, weight, prio, replica = ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]
local markMs = tonumber(ARGV[8])
local stillWaiting = tonumber(ARGV[9])
local me = ARGV[6] .. '|' .. ARGV[5] .. '|' .. app .. '|' .. replica
local myTag = 'F:' .. ARGV[6] .. '|' .. app
local vKey = 'V:' .. ARGV[6]
local out = { 0, 0 }
local tokens, ttls, starts, marked, taken, blocked = {}, {}, {}, {}, {}, 0
-- Per bucket: the lowest start tag among other replicas' waiting flows at this priority, if any.
local lowest = {}
for i = 1, n do
  local k, a = 5 * i, 6 * i + 3
  local cfgRate, cfgBurst, cfgConc = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local maxRate, maxConc = tonumber(ARGV[a + 5]), tonumber(ARGV[a + 6])
  local rate, conc, rateOut, concOut = cfgRate, cfgConc, ARGV[a + 1], ARGV[a + 3]
  local lim = redis.call('HMGET', KEYS[k - 2], 'rate', 'concurrency')
  local r, c = tonumber(lim[1]), tonumber(lim[2])
  if r and r > 0 then
    if r <= maxRate then rate = r; rateOut = lim[1] else rate = maxRate; rateOut = ARGV[a + 5] end
  end
  if c and c >= 1 then
    if c <= maxConc then conc = c; concOut = lim[2] else conc = maxConc; concOut = ARGV[a + 6] end
  end
  local burst = math.max(1, cfgBurst * rate / cfgRate)
  local tok = tokensAt(KEYS[k - 4], rate, burst)
  ttls[i] = math.max(minTtl, math.ceil(burst * 1000 / rate))
  local cap = tonumber(ARGV[a + 4])
  if cap and cap < tok then
    tok = cap
    redis.call('HSET', KEYS[k - 4], 'tokens', tok, 'at', now)
    redis.call('PEXPIRE', KEYS[k - 4], ttls[i])
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[k - 3], '-inf', now)
  local tv = redis.call('HMGET', KEYS[k], myTag, vKey)
  local v = tonumber(tv[2]) or 0
  starts[i] = math.max(tonumber(tv[1]) or 0, v)
  if blocked == 0 then
    local free = conc - redis.call('ZCARD', KEYS[k - 3])
    -- Other replicas with a waiting mark ahead of this take keep slots and tokens: one slot each (a
    -- replica takes one at a time), and as many tokens as their flow is owed before this one (the gap in
    -- start tags times its weight; half the burst for a higher priority), at most half the burst each
    -- and the burst less one in all: a replica late to come back keeps its turn through a delay of that
    -- many tokens, and one that is dead (until its mark lapses) only lowers where the bucket runs.
    local slotsAhead, tokensAhead = 0, 0
    redis.call('ZREMRANGEBYSCORE', KEYS[k - 1], '-inf', now)
    local marks = redis.call('ZRANGE', KEYS[k - 1], 0, -1)
    if #marks > 0 then
      local most = math.max(1, math.floor(burst / 2))
      local owed, same, sameRep, sameW = {}, {}, {}, {}
      for _, m in ipairs(marks) do
        if m == me then
          marked[i] = true
        else
          local p, w, who, rep = string.match(m, '^([^|]*)|([^|]*)|(.*)|([^|]*)$')
          local pn = tonumber(p)
          if rep ~= replica and pn then
            if pn > prio then owed[rep] = most
            elseif pn == prio then
              same[#same + 1] = 'F:' .. p .. '|' .. who
              sameRep[#same] = rep
              sameW[#same] = tonumber(w) or 1
            end
          end
        end
      end
      if #same > 0 then
        local fs = redis.call('HMGET', KEYS[k], unpack(same))
        for j = 1, #same do
          local sj = math.max(tonumber(fs[j]) or 0, v)
          if lowest[i] == nil or sj < lowest[i] then lowest[i] = sj end
          local gap = starts[i] - sj
          if gap > 0 then
            local o = math.min(most, math.max(1, math.ceil(gap * sameW[j] - 1e-9)))
            if o > (owed[sameRep[j]] or 0) then owed[sameRep[j]] = o end
          end
        end
      end
      for _, o in pairs(owed) do
        slotsAhead = slotsAhead + 1
        tokensAhead = tokensAhead + o
      end
      -- Never more than the bucket can hold: once it is full, someone can take.
      tokensAhead = math.min(tokensAhead, math.max(0, math.floor(burst) - 1))
    end
    if free < 1 + slotsAhead then
      blocked = i
      out[2] = -1
    elseif tok < 1 + tokensAhead then
      blocked = i
      out[2] = math.ceil((1 + tokensAhead - tok) * 1000 / rate)
    end
  end
  tokens[i] = tok
  out[4 * i - 1] = rateOut
  out[4 * i] = concOut
end
out[1] = blocked
if blocked == 0 then
  local expires = now + leaseMs
  for i = 1, n do
    local k = 5 * i
    tokens[i] = tokens[i] - 1
    redis.call('HSET', KEYS[k - 4], 'tokens', tokens[i], 'at', now)
    taken[i] = redis.call('HINCRBY', KEYS[k - 4], 'taken', 1)
    redis.call('PEXPIRE', KEYS[k - 4], ttls[i])
    redis.call('ZADD', KEYS[k - 3], expires, ARGV[1])
    redis.call('PEXPIRE', KEYS[k - 3], ttls[i])
    redis.call('PEXPIRE', KEYS[k - 2], ttls[i])
    -- Virtual time moves to this take's start tag, but not past a flow still waiting elsewhere: served
    -- out of turn (its replica was late), this take must not wipe out the waiting flow's lead.
    local vNext = starts[i]
    if lowest[i] and lowest[i] < vNext then vNext = math.max(tonumber(redis.call('HGET', KEYS[k], vKey)) or 0, lowest[i]) end
    redis.call('HSET', KEYS[k], myTag, starts[i] + 1 / weight, vKey, vNext)
    redis.call('PEXPIRE', KEYS[k], ttls[i])
    if redis.call('HLEN', KEYS[k]) > 256 then
      -- Apps not ahead of their priority's virtual time start there anyway: their tags can go.
      local all = redis.call('HGETALL', KEYS[k])
      local vs = {}
      for j = 1, #all, 2 do
        local p = string.match(all[j], '^V:(.*)$')
        if p then vs[p] = tonumber(all[j + 1]) end
      end
      for j = 1, #all, 2 do
        local p = string.match(all[j], '^F:([^|]*)|')
        if p and tonumber(all[j + 1]) <= (vs[p] or 0) then redis.call('HDEL', KEYS[k], all[j]) end
      end
    end
    if i == stillWaiting then
      redis.call('ZADD', KEYS[k - 1], now + markMs, me)
      redis.call('PEXPIRE', KEYS[k - 1], math.max(ttls[i], markMs))
    elseif marked[i] then
      redis.call('ZREM', KEYS[k - 1], me)
    end
  end
else
  -- Marks where this take got through are not needed there; it waits at the bucket that said no.
  for i = 1, blocked - 1 do
    if marked[i] then redis.call('ZREM', KEYS[5 * i - 1], me) end
  end
  local w = KEYS[5 * blocked - 1]
  -- Renewed by each retry; lasts a few retries, never longer than a lease.
  local life = math.min(leaseMs, math.max(markMs, 3 * out[2]))
  redis.call('ZADD', w, now + life, me)
  redis.call('PEXPIRE', w, math.max(ttls[blocked], life))
end
for i = 1, n do
  out[4 * i + 1] = tostring(tokens[i])
  out[4 * i + 2] = taken[i] or -1
end
return out
`;

/**
 * Gives back the slots of one take, and applies caps noticed since the last take (see above).
 * KEYS: the take's lease sets, then the tokens hashes to cap.
 * ARGV: [1] lease id, [2] number of lease sets, [3] key TTL (ms), then per capped bucket j:
 *       ARGV[3j+1] cap, ARGV[3j+2] effective rate, ARGV[3j+3] effective burst.
 */
export const RELEASE = `${PREAMBLE}${TOKENS_AT}
local n = tonumber(ARGV[2])
for i = 1, n do redis.call('ZREM', KEYS[i], ARGV[1]) end
for j = 1, #KEYS - n do
  local key, cap = KEYS[n + j], tonumber(ARGV[3 * j + 1])
  if cap < tokensAt(key, tonumber(ARGV[3 * j + 2]), tonumber(ARGV[3 * j + 3])) then
    redis.call('HSET', key, 'tokens', cap, 'at', now)
    redis.call('PEXPIRE', key, ARGV[3])
  end
end
return 0
`;

/**
 * Extends the leases of calls still in flight (only those still there: XX, so an expired one stays gone).
 * KEYS: lease sets; ARGV: [1] leaseMs, [2] key TTL, [2+i] the space-separated lease ids in KEYS[i].
 * Returns how many leases were renewed.
 */
export const RENEW = `${PREAMBLE}
local expires = now + tonumber(ARGV[1])
local renewed = 0
for i = 1, #KEYS do
  for id in string.gmatch(ARGV[2 + i], '%S+') do
    renewed = renewed + redis.call('ZADD', KEYS[i], 'XX', 'CH', expires, id)
  end
  redis.call('PEXPIRE', KEYS[i], ARGV[2])
end
return renewed
`;

/**
 * Shares a bucket's new effective limits (adaptive), without letting one replica undo another's cut
 * with a change computed from limits it had not seen yet. For the rate and the concurrency each:
 * a decrease (new below what the replica had seen) applies when it is below the current value; an
 * increase applies only when the replica had seen the current value and nothing changed in the last
 * interval, so N replicas climb back no faster than one.
 * KEYS[1]: limits hash. ARGV: [1] seen rate, [2] seen concurrency, [3] new rate, [4] new concurrency,
 * [5] starting rate, [6] starting concurrency, [7] intervalMs, [8] key TTL (ms), [9] highest rate,
 * [10] highest concurrency.
 * Returns the limits now in force: { rate, concurrency }, as written.
 */
export const PUBLISH = `${PREAMBLE}
local h = redis.call('HMGET', KEYS[1], 'rate', 'concurrency', 'changedAt')
local cfgRate, cfgConc = tonumber(ARGV[5]), tonumber(ARGV[6])
local maxRate, maxConc = tonumber(ARGV[9]), tonumber(ARGV[10])
local curRate, rateOut = cfgRate, ARGV[5]
local curConc, concOut = cfgConc, ARGV[6]
if tonumber(h[1]) and tonumber(h[1]) > 0 and tonumber(h[1]) <= maxRate then curRate = tonumber(h[1]); rateOut = h[1] end
if tonumber(h[2]) and tonumber(h[2]) >= 1 and tonumber(h[2]) <= maxConc then curConc = tonumber(h[2]); concOut = h[2] end
local calm = now - (tonumber(h[3]) or 0) >= tonumber(ARGV[7])
local changed = false
local function decide(seen, new, cur, newOut, out)
  if new < seen then
    if new < cur then changed = true; return newOut end
  elseif new > seen and calm and cur == seen then
    changed = true
    return newOut
  end
  return out
end
rateOut = decide(tonumber(ARGV[1]), tonumber(ARGV[3]), curRate, ARGV[3], rateOut)
concOut = decide(tonumber(ARGV[2]), tonumber(ARGV[4]), curConc, ARGV[4], concOut)
if changed then
  redis.call('HSET', KEYS[1], 'rate', rateOut, 'concurrency', concOut, 'changedAt', now)
  redis.call('PEXPIRE', KEYS[1], ARGV[8])
end
return { rateOut, concOut }
`;
