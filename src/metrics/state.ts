import { performance } from 'node:perf_hooks';
import type { Provenance } from '../quota/index.js';
import type { CircuitState } from '../retry/index.js';
import type { QuotaView } from './source.js';

/** One limit's buckets now, every scope (project, or project and identity) summed. */
export interface BucketView {
  name: string;
  scopes: number;
  queued: number;
  inFlight: number;
  tokens: number;
  rate: number;
  configuredRate: number;
  concurrency: number;
  configuredConcurrency: number;
  /** Where the effective figures stand: stated or learned when any scope's is, else the table's origin. */
  rateSource: Provenance;
  concurrencySource: Provenance;
}

/** A figure learned in one scope makes the limit's figure a learned one; one stated makes it stated. */
function merged(a: Provenance, b: Provenance): Provenance {
  if (a === 'stated' || b === 'stated') return 'stated';
  if (a === 'learned' || b === 'learned') return 'learned';
  return a;
}

/** Sums the buckets by limit; called at scrape and sample time, never on the request path. */
export function bucketViews(quota: Pick<QuotaView, 'buckets' | 'queuedAt'>): Map<string, BucketView> {
  const now = performance.now();
  const views = new Map<string, BucketView>();
  for (const b of quota.buckets()) {
    const name = b.limit.name;
    let v = views.get(name);
    if (v === undefined) {
      v = {
        name,
        scopes: 0,
        queued: 0,
        inFlight: 0,
        tokens: 0,
        rate: 0,
        configuredRate: 0,
        concurrency: 0,
        configuredConcurrency: 0,
        rateSource: b.rateSource,
        concurrencySource: b.concurrencySource,
      };
      views.set(name, v);
    }
    v.rateSource = merged(v.rateSource, b.rateSource);
    v.concurrencySource = merged(v.concurrencySource, b.concurrencySource);
    v.scopes++;
    v.queued += quota.queuedAt(b);
    v.inFlight += b.inFlight;
    v.tokens += b.tokensAt(now);
    v.rate += b.rate;
    v.configuredRate += b.limit.rate;
    v.concurrency += b.concurrency;
    v.configuredConcurrency += b.limit.concurrency;
  }
  return views;
}

export const CIRCUIT_VALUE: Record<CircuitState, number> = { closed: 0, 'half-open': 1, open: 2 };

/** What the response cache tells about itself, when it has a `stats()` method. */
export interface CacheStats {
  entries: number;
  bytes: number;
  evictions: number;
}

export function cacheStats(cache: object | null): CacheStats | null {
  const stats = (cache as { stats?: unknown } | null)?.stats;
  if (typeof stats !== 'function') return null;
  const s = stats.call(cache) as Partial<Record<keyof CacheStats, unknown>> | null | undefined;
  if (!s || typeof s !== 'object') return null;
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
  return { entries: num(s.entries), bytes: num(s.bytes), evictions: num(s.evictions) };
}
