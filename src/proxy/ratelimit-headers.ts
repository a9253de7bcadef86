import type { Bucket } from '../quota/index.js';
import type { HeaderMap } from './headers.js';

/**
 * RateLimit-Policy and RateLimit (IETF httpapi "RateLimit header fields for HTTP", draft 11) for the
 * bucket closest to exhaustion on a request's path, the one with the fewest calls left before a call would
 * wait: by its rate as `"name";q=30;w=1` with `"name";r=12;t=1`, or, when its free slots are fewer than
 * any bucket's tokens, by its concurrency as `"name";q=40;qu="concurrent-requests"` with `"name";r=3`. Figures are the effective ones (what the gateway enforces now, adaptive cuts included),
 * which are never looser than CDF's. Policies are made once per bucket and figure; an answer builds one
 * RateLimit string.
 */

interface Policies {
  rate: number;
  concurrency: number;
  /** The bucket's name as a structured-field string. */
  name: string;
  ratePolicy: string;
  concurrencyPolicy: string;
}

const byBucket = new WeakMap<Bucket, Policies>();

/** An sf-string: printable ASCII, with `"` and `\` escaped; anything else dropped. */
function sfString(s: string): string {
  return `"${s.replace(/[^\x20-\x7e]/g, '').replace(/["\\]/g, '\\$&')}"`;
}

function policiesOf(b: Bucket): Policies {
  let p = byBucket.get(b);
  if (p !== undefined && p.rate === b.rate && p.concurrency === b.concurrency) return p;
  const name = p?.name ?? sfString(b.limit.name);
  // q is an integer: a rate under 1/s is stated over a longer window (0.5/s: q=1;w=2).
  const window = b.rate >= 1 ? 1 : Math.ceil(1 / b.rate);
  const quota = Math.max(1, Math.floor(b.rate * window));
  p = {
    rate: b.rate,
    concurrency: b.concurrency,
    name,
    ratePolicy: `${name};q=${quota};w=${window}`,
    concurrencyPolicy: `${name};q=${b.concurrency};qu="concurrent-requests"`,
  };
  byBucket.set(b, p);
  return p;
}

/** Tokens the bucket holds at `now` (what its next refill would give), without changing it. */
function tokensAt(b: Bucket, now: number): number {
  const elapsed = now - b.refilledAt;
  return elapsed > 0 ? Math.min(b.burst, b.tokens + (elapsed * b.rate) / 1000) : b.tokens;
}

/**
 * Sets `ratelimit-policy` and `ratelimit` on `headers` for the scarcest of `buckets` at `now`. `held`: 1
 * when the answer still holds a slot in each bucket (streamed from CDF under its lease), which is free
 * again by the time the app reads the header, so it is counted as free.
 */
export function setRateLimitHeaders(headers: HeaderMap, buckets: readonly Bucket[], now: number, held = 0): void {
  let chosen: Bucket | null = null;
  let byRate = true;
  let tokens = 0;
  // Closest to exhaustion: the fewest calls left before one would wait (whole tokens, or free slots).
  let fewest = Number.POSITIVE_INFINITY;
  for (let i = 0; i < buckets.length; i++) {
    const b = buckets[i];
    const t = tokensAt(b, now);
    const calls = t >= 1 ? Math.floor(t) : 0;
    if (calls < fewest) {
      fewest = calls;
      chosen = b;
      byRate = true;
      tokens = t;
    }
    const free = b.concurrency - b.inFlight + held;
    if (free < fewest) {
      fewest = free;
      chosen = b;
      byRate = false;
    }
  }
  if (chosen === null) return;
  const p = policiesOf(chosen);
  if (byRate) {
    const remaining = tokens >= 1 ? Math.floor(tokens) : 0;
    // Seconds until the quota is whole again; with none left, until the next call may go.
    const reset = Math.max(0, Math.ceil(((remaining > 0 ? chosen.burst : 1) - tokens) / chosen.rate));
    headers['ratelimit-policy'] = p.ratePolicy;
    headers.ratelimit = `${p.name};r=${remaining};t=${reset}`;
  } else {
    headers['ratelimit-policy'] = p.concurrencyPolicy;
    headers.ratelimit = `${p.name};r=${Math.max(0, chosen.concurrency - chosen.inFlight + held)}`;
  }
}
