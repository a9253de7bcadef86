export { sendAnswer, sendError, type UpstreamAnswer } from './answer.js';
export { BufferBudget } from './buffer-budget.js';
export { type CacheOutcome, Exchange } from './exchange.js';
export { Forwarder, type ForwarderParts } from './forwarder.js';
export { downstreamResponseHeaders, type HeaderMap, upstreamRequestHeaders } from './headers.js';
export { Pipeline, type PipelineParts } from './pipeline.js';
export { networkFailure, Upstream, type UpstreamCall, type UpstreamResponse } from './upstream.js';
export { IdleWatchdog } from './watchdog.js';
