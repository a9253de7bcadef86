import type { CacheConfig } from '../config/index.js';
import type { Exchange } from '../proxy/exchange.js';
import type { HeaderMap } from '../proxy/headers.js';
import type { CachePlan } from '../proxy/types.js';

/** A complete 200 answer held in memory. */
export interface CachedAnswer {
  status: number;
  headers: HeaderMap;
  body: Buffer;
  /** Date.now() when it was stored: Age and max-age are counted from it. */
  storedAt: number;
}

/**
 * The response cache seen from the request path. `plan` returns null when no rule matches, which keeps
 * the cost of an uncached request to one lookup.
 */
export interface ResponseCache {
  plan(ex: Exchange): CachePlan | null;
  /** Every answered request: a successful write drops the cached entries of its family in its project. */
  answered(ex: Exchange): void;
  /** Reload: the cache settings changed (rules, bounds). */
  reconfigure?(config: CacheConfig): void;
  close(): void;
}
