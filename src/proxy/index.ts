export { BufferBudget } from './buffer-budget.js';
export { Exchange } from './exchange.js';
export { Forwarder, type ForwarderParts } from './forwarder.js';
export type { HeaderMap } from './headers.js';
export { Pipeline, type PipelineParts } from './pipeline.js';
export type { CacheOutcome, CachePlan, RequestTrace, UpstreamAnswer } from './types.js';
export { Upstream, type UpstreamCall, type UpstreamResponse } from './upstream.js';
export { IdleWatchdog } from './watchdog.js';
