import type { Logger } from 'pino';
import type { GatewayConfig } from '../config/index.js';
import type { Telemetry } from '../metrics/telemetry.js';
import { noCache, type ResponseCache } from './types.js';

export type { CachedAnswer, CachePlan, ResponseCache } from './types.js';

export function createResponseCache(_config: GatewayConfig, _telemetry: Telemetry, _log: Logger): ResponseCache {
  return noCache;
}
