/**
 * The Lua the Redis store runs. Each script is one atomic step on the Redis server, timed by Redis's own
 * clock (TIME), so replicas with skewed clocks still share one bucket fairly.
 *
 * Keys per bucket (prefix:bucketKey:...):
 *  - `tokens`  hash { tokens, at }: the token count at Redis time `at` (ms), refilled lazily; it may be
 *              negative (a debt) after a 429 (see `cap` below).
 *  - `leases`  sorted set: one member per call in flight (the lease id), scored by its expiry (ms).
 *  - `limits`  hash { rate, concurrency, changedAt }: the effective limits (adaptive), written by
 *              publishEffective; absent while they are the configured ones.
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
 * All or nothing over a request's buckets.
 * KEYS: per bucket i, KEYS[3i-2] tokens, KEYS[3i-1] leases, KEYS[3i] limits.
 * ARGV: [1] lease id, [2] leaseMs, [3] minimum key TTL (ms), then per bucket i the configured
 *       ARGV[4i] rate, ARGV[4i+1] burst, ARGV[4i+2] concurrency, and ARGV[4i+3] a cap on its tokens
 *       or '' for none.
 * Returns { blocked, waitMs, then per bucket: effective rate, effective concurrency, tokens left }:
 * blocked is 0 when a token and a lease were taken in every bucket, else the 1-based index of the bucket
 * that said no, with waitMs until its next token, or -1 when it has no free slot. Effective limits are
 * the limits hash capped by the configured values, passed back as they were written (no float rounding).
 */
export const TAKE = `${PREAMBLE}${TOKENS_AT}
local n = #KEYS / 3
local leaseMs = tonumber(ARGV[2])
local minTtl = tonumber(ARGV[3])
local out = { 0, 0 }
local tokens, ttls, blocked = {}, {}, 0
for i = 1, n do
  local k, a = 3 * i, 4 * i
  local cfgRate, cfgBurst, cfgConc = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local rate, conc, rateOut, concOut = cfgRate, cfgConc, ARGV[a], ARGV[a + 2]
  local lim = redis.call('HMGET', KEYS[k], 'rate', 'concurrency')
  local r, c = tonumber(lim[1]), tonumber(lim[2])
  if r and r > 0 and r < rate then rate = r; rateOut = lim[1] end
  if c and c >= 1 and c < conc then conc = c; concOut = lim[2] end
  local burst = math.max(1, cfgBurst * rate / cfgRate)
  local tok = tokensAt(KEYS[k - 2], rate, burst)
  ttls[i] = math.max(minTtl, math.ceil(burst * 1000 / rate))
  local cap = tonumber(ARGV[a + 3])
  if cap and cap < tok then
    tok = cap
    redis.call('HSET', KEYS[k - 2], 'tokens', tok, 'at', now)
    redis.call('PEXPIRE', KEYS[k - 2], ttls[i])
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[k - 1], '-inf', now)
  if blocked == 0 then
    if redis.call('ZCARD', KEYS[k - 1]) >= conc then
      blocked = i
      out[2] = -1
    elseif tok < 1 then
      blocked = i
      out[2] = math.ceil((1 - tok) * 1000 / rate)
    end
  end
  tokens[i] = tok
  out[3 * i] = rateOut
  out[3 * i + 1] = concOut
end
out[1] = blocked
if blocked == 0 then
  local expires = now + leaseMs
  for i = 1, n do
    local k = 3 * i
    tokens[i] = tokens[i] - 1
    redis.call('HSET', KEYS[k - 2], 'tokens', tokens[i], 'at', now)
    redis.call('PEXPIRE', KEYS[k - 2], ttls[i])
    redis.call('ZADD', KEYS[k - 1], expires, ARGV[1])
    redis.call('PEXPIRE', KEYS[k - 1], ttls[i])
    redis.call('PEXPIRE', KEYS[k], ttls[i])
  end
end
for i = 1, n do out[3 * i + 2] = tostring(tokens[i]) end
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
 * [5] configured rate, [6] configured concurrency, [7] intervalMs, [8] key TTL (ms).
 * Returns the limits now in force: { rate, concurrency }, as written.
 */
export const PUBLISH = `${PREAMBLE}
local h = redis.call('HMGET', KEYS[1], 'rate', 'concurrency', 'changedAt')
local cfgRate, cfgConc = tonumber(ARGV[5]), tonumber(ARGV[6])
local curRate, rateOut = cfgRate, ARGV[5]
local curConc, concOut = cfgConc, ARGV[6]
if tonumber(h[1]) and tonumber(h[1]) < cfgRate then curRate = tonumber(h[1]); rateOut = h[1] end
if tonumber(h[2]) and tonumber(h[2]) < cfgConc then curConc = tonumber(h[2]); concOut = h[2] end
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
