import type { CachePlan } from '../cache/types.js';
import type { UpstreamAnswer } from '../proxy/answer.js';
import type { Exchange } from '../proxy/exchange.js';

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
  /** The record stage: ends every open span. */
  end(ex: Exchange): void;
}

/** The gateway's tracing: `start` is only called when `enabled` (the request path checks once). */
export interface Tracing {
  readonly enabled: boolean;
  start(ex: Exchange): RequestTrace;
  /** Sends what is buffered (tests, shutdown). */
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}
