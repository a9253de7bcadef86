import type { Logger } from 'pino';
import type { LimitConfig } from '../config/index.js';
import type { Bucket, LearnedView } from '../quota/index.js';
import type { CircuitState } from '../retry/index.js';

/** What the quota shows the admin side: its buckets now, and the tree's configured and learned figures. */
export interface QuotaView {
  /** Every bucket now: each limit's, per scope. */
  buckets(): Iterable<Bucket>;
  /** Requests waiting in a bucket's queue now. */
  queuedAt(bucket: Bucket): number;
  /** The configured limits, without the learned ones. */
  readonly limits: readonly LimitConfig[];
  /** The buckets learned from CDF's 429s. */
  learned(): readonly LearnedView[];
}

/**
 * What Prometheus and the dashboard read from the gateway, at scrape and sample time (never on the request
 * path): this narrow view rather than the gateway's parts, so that metrics/ does not depend on app.ts.
 */
export interface MetricsSource {
  quota: QuotaView;
  circuit: { readonly state: CircuitState };
  /** The quota store: in memory, or shared. */
  store: { status(): { mode: string; healthy: boolean } };
  /** The response cache: its `stats()` is read when it has one. */
  cache: object;
  /** CDF's base URL (`upstream.baseUrl`), for the dashboard's header. */
  upstream: string;
  log: Pick<Logger, 'info' | 'warn'>;
}
