import type { LimitConfig } from '../src/config/index.js';
import type { QuotaLimit } from '../src/quota/index.js';

/** A limit as the quota uses it, for tests that make buckets by hand: a configured figure is its own ceiling. */
export function quotaLimitOf(over: Partial<QuotaLimit> & Pick<LimitConfig, 'rate' | 'concurrency'>): QuotaLimit {
  return {
    name: 'test',
    match: ['/**'],
    classes: null,
    methods: null,
    per: 'project',
    burst: over.rate,
    fallback: false,
    mode: 'enforce',
    source: { rate: 'configured', concurrency: 'configured' },
    probeAbove: null,
    perFamily: false,
    maxRate: over.maxRate ?? over.rate,
    maxConcurrency: over.maxConcurrency ?? over.concurrency,
    ...over,
  };
}
