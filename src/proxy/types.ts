import type { Readable } from 'node:stream';
import type { HeaderMap } from './headers.js';

/**
 * The types a request carries through the proxy, the cache and tracing, in one file that imports none of
 * them: each of those folders imports this one, so none of them has to import another's.
 */

/** An answer on its way to the app: streamed from CDF, or whole (an error body, a cached entry). */
export interface UpstreamAnswer {
  status: number;
  headers: HeaderMap;
  body: Readable | Buffer;
  /** Gives back the quota slots of the attempt that produced it; idempotent. */
  release(): void;
}

/** How the response cache served a request, for the `x-cache` header, the log line and the metrics. */
export type CacheOutcome = 'HIT' | 'MISS' | 'BYPASS' | 'COALESCED' | 'STALE';

/** How one cacheable request is served: from the cache, from an identical call in flight, or by `fetch`. */
export interface CachePlan {
  run(fetch: () => Promise<UpstreamAnswer>): Promise<UpstreamAnswer>;
}

/** One traced request: the server span and its children. Only made while tracing is on. */
export interface RequestTrace {
  /** Runs the cache plan inside a `cache lookup` span that ends when the call to CDF starts (or the answer came from the cache). */
  cacheLookup(plan: CachePlan, fetch: () => Promise<UpstreamAnswer>): Promise<UpstreamAnswer>;
  /** A `queue wait` span for one attempt, from asking the scheduler until it admitted or refused. */
  queueWait(): void;
  /** The scheduler answered: `rejected` names why it refused, or null when admitted. */
  queueDone(rejected: string | null): void;
  /** Opens the span of one upstream attempt and puts its traceparent in the upstream headers. */
  attempt(): void;
  /** The attempt ended with CDF's status, or 0 for no answer (`error` names the failure). */
  attemptDone(status: number, error?: string): void;
  /** The record stage: ends every open span, with what happened to the request it was started for. */
  end(): void;
}
