import type { Exchange } from '../proxy/exchange.js';
import type { RequestTrace } from '../proxy/types.js';

export type { RequestTrace } from '../proxy/types.js';

/** The gateway's tracing: `start` is only called when `enabled` (the request path checks once). */
export interface Tracing {
  readonly enabled: boolean;
  start(ex: Exchange): RequestTrace;
  /** Sends what is buffered (tests, shutdown). */
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}
