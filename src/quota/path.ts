import type { RouteInfo } from '../cdf/index.js';
import type { Bucket } from './bucket.js';

/**
 * A request's way through the limit tree (the pipeline's Exchange): what its buckets were chosen for, the
 * buckets, and the tree's generation when they were chosen. The request owns it; when the tree has learned or
 * dropped buckets since, QuotaTree.current chooses them again, so that a 429 storm's retries and queued calls
 * take the bucket their 429s taught.
 */
export interface BucketPath {
  readonly method: string;
  readonly route: RouteInfo;
  /** Null outside a project's paths (no buckets to choose again). */
  readonly target: { readonly project: string; readonly rest: string } | null;
  readonly identity: string;
  buckets: readonly Bucket[];
  /** QuotaTree.generation when `buckets` were chosen. */
  bucketsChosenAt: number;
}
