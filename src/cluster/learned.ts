import type { Logger } from 'pino';
import type { LimitConfig } from '../config/index.js';
import type { ScriptedRedis } from './connection.js';

/** Replicas look for buckets learned elsewhere at most this often (while calls are in flight). */
const READ_EVERY_MS = 2000;
/** A learned bucket nobody republished for this long is dropped from Redis. */
const LEARNED_TTL_MS = 60 * 60_000;

/**
 * Buckets the quota tree learned from CDF's 429s, shared between replicas in one Redis hash (field: what it
 * was learned for, value: the bucket as JSON). A replica that learns one publishes it; the others read the
 * hash now and then and adopt what they lack, so every replica's calls to that operation take from the
 * same shared bucket (its tokens, slots and effective limits live under its name like any bucket's). A
 * replica that undoes one deletes its field; the others drop what they saw in the hash and no longer find.
 */
export class LearnedShare {
  private readonly key: string;
  private readAt = 0;
  private listener: ((limit: LimitConfig) => void) | null = null;
  private withdrawn: ((key: string) => void) | null = null;
  /** The fields the last read found: one missing from the next read was withdrawn by its replica. */
  private seen = new Set<string>();

  constructor(
    prefix: string,
    private readonly log: Logger,
  ) {
    this.key = `${prefix}:{learned}:buckets`;
  }

  onLearned(listener: (limit: LimitConfig) => void, withdrawn: (key: string) => void): void {
    this.listener = listener;
    this.withdrawn = withdrawn;
  }

  publish(client: ScriptedRedis, limit: LimitConfig): void {
    const f = limit.learned;
    if (!f) return;
    client
      .multi()
      .hset(this.key, f.key, JSON.stringify(limit))
      .pexpire(this.key, LEARNED_TTL_MS)
      .exec()
      .catch((err: Error) => this.log.debug({ err: err.message }, 'redis: publishing a learned bucket failed'));
  }

  withdraw(client: ScriptedRedis, key: string): void {
    this.seen.delete(key);
    client
      .hdel(this.key, key)
      .catch((err: Error) => this.log.debug({ err: err.message }, 'redis: withdrawing a learned bucket failed'));
  }

  /** Reads the hash when it is time (called from the store's periodic work). */
  maybeRead(client: ScriptedRedis, now: number): void {
    if (this.listener === null || now - this.readAt < READ_EVERY_MS) return;
    this.readAt = now;
    client.hgetall(this.key).then(
      (all) => {
        const fields = new Set(Object.keys(all));
        for (const key of this.seen) if (!fields.has(key)) this.withdrawn?.(key);
        this.seen = fields;
        for (const text of Object.values(all)) {
          try {
            const limit = JSON.parse(text) as LimitConfig;
            if (limit?.learned && typeof limit.name === 'string') this.listener?.(limit);
          } catch {
            // Not ours: ignored.
          }
        }
      },
      (err: Error) => this.log.debug({ err: err.message }, 'redis: reading learned buckets failed'),
    );
  }
}
