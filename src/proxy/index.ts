export { sendAnswer, sendError } from './answer.js';
export { BufferBudget } from './buffer-budget.js';
export { Exchange } from './exchange.js';
export { Forwarder, type ForwarderParts } from './forwarder.js';
export { downstreamResponseHeaders, type HeaderMap, upstreamRequestHeaders } from './headers.js';
export { Pipeline, type PipelineParts } from './pipeline.js';
export type { CacheOutcome, CachePlan, RequestTrace, UpstreamAnswer } from './types.js';
export { networkFailure, Upstream, type UpstreamCall, type UpstreamResponse } from './upstream.js';
export { IdleWatchdog } from './watchdog.js';
