import type { Logger } from 'pino';
import type { GatewayConfig } from '../config/index.js';
import { MemoryStore, type QuotaStore } from '../quota/index.js';

export { LocalShare } from './degraded.js';
export type { RedisStore, RedisStoreOptions } from './redis-store.js';

/** The store behind the buckets: in memory, or in Redis when cluster.redisUrl is set. */
export async function createQuotaStore(config: GatewayConfig, log: Logger): Promise<QuotaStore> {
  const { redisUrl } = config.cluster;
  if (redisUrl === null) return new MemoryStore();
  // Loaded only when used: ioredis is about 20 MiB of an idle sidecar's memory.
  const { RedisStore } = await import('./redis-store.js');
  const store = new RedisStore({
    config: config.cluster,
    redisUrl,
    adaptiveIntervalMs: config.adaptive.intervalMs,
    log,
  });
  await store.start();
  return store;
}
