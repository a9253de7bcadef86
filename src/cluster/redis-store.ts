import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { ClusterConfig, LimitConfig } from '../config/index.js';
import type { AppRef, Blocked, Bucket, QuotaStore } from '../quota/index.js';
import { type Arg, RedisConnection } from './connection.js';
import { LocalShare } from './degraded.js';
import { LearnedShare } from './learned.js';
import {
  KeyBook,
  publishArgs,
  releaseArgs,
  renewArgs,
  type TakeContext,
  takeArgs,
  takeReplyOf,
} from './script-args.js';
import { SharedLimits } from './shared-limits.js';
import { TakeShare } from './take-share.js';
import { TicketBook } from './tickets.js';
import { TokenView } from './token-view.js';

/** Waiting requests look again this often for a slot another replica may have freed. */
const SLOT_POLL_MS = 15;
/** A replica refused in a bucket is marked waiting there at least this long unless it tries again. */
const WAIT_MARK_MS = 300;
/** Keys of unused buckets expire after this long at least. */
const MIN_KEY_TTL_MS = 60_000;

export interface RedisStoreOptions {
  config: ClusterConfig;
  redisUrl: string;
  /** adaptive.intervalMs: replicas together raise a bucket's shared limits at most once per interval. */
  adaptiveIntervalMs: number;
  log: Logger;
}

/**
 * Buckets shared by every replica through Redis: one Lua script per decision takes a token and a lease
 * from all of a request's buckets at once, or tells which bucket said no. Fairness is global: the take
 * names the app, Redis keeps each app's fair-queueing tags and marks the apps that wait, and a take
 * leaves a token and a slot for every waiting app ahead of it (scripts.ts, TAKE); each replica orders its
 * own waiting apps in its local queues. While Redis cannot be reached, decisions fall back
 * to local buckets holding 1/expectedReplicas of each limit, and the store reports itself unhealthy.
 */
export class RedisStore implements QuotaStore {
  readonly slotPollMs = SLOT_POLL_MS;
  private readonly conn: RedisConnection;
  private readonly log: Logger;
  private readonly leaseMs: number;
  private readonly keyTtlMs: number;
  private readonly adaptiveIntervalMs: number;
  private readonly local: LocalShare;
  private readonly keys: KeyBook;
  private readonly view = new TokenView();
  private readonly shares = new TakeShare();
  private readonly limits = new SharedLimits();
  private readonly tickets = new TicketBook();
  private readonly replicaId = randomBytes(6).toString('hex');
  private readonly ctx: TakeContext;
  /** Script calls sent to Redis, by script, and the takes it answered yes: the store's cost per admission. */
  readonly calls = { take: 0, admitted: 0, release: 0, renew: 0, publish: 0 };
  private seq = 0;
  /** Renews this replica's leases; runs only while it holds any (an idle sidecar runs no timer). */
  private renewTimer: NodeJS.Timeout | null = null;
  private readonly renewMs: number;
  private readonly learned: LearnedShare;

  constructor(options: RedisStoreOptions) {
    const { config, log } = options;
    this.log = log;
    this.leaseMs = config.leaseMs;
    this.adaptiveIntervalMs = options.adaptiveIntervalMs;
    this.keyTtlMs = Math.max(config.leaseMs * 4, MIN_KEY_TTL_MS);
    this.keys = new KeyBook(config.keyPrefix);
    this.ctx = {
      replicaId: this.replicaId,
      leaseMs: this.leaseMs,
      keyTtlMs: this.keyTtlMs,
      markMs: Math.min(WAIT_MARK_MS, this.leaseMs),
    };
    this.local = new LocalShare(config.expectedReplicas);
    this.learned = new LearnedShare(config.keyPrefix, log);
    this.conn = new RedisConnection({
      config,
      redisUrl: options.redisUrl,
      log,
      share: `1/${this.local.replicas}`,
      onBack: () => {
        for (const bucket of this.limits.drainDeferred()) this.publishEffective(bucket);
      },
    });
    this.renewMs = Math.max(50, Math.floor(config.leaseMs / 3));
  }

  /** Connects; when Redis cannot be reached the store starts degraded and keeps trying in the background. */
  start(): Promise<void> {
    return this.conn.start();
  }

  take(
    buckets: readonly Bucket[],
    now: number,
    app?: AppRef,
    stillWaitingAt?: Bucket,
  ): Blocked | null | Promise<Blocked | null> {
    if (!this.conn.usable()) return this.takeLocal(buckets, now);
    const id = `${this.replicaId}.${(++this.seq).toString(36)}`;
    const { args, leaseKeys } = takeArgs(this.keys, buckets, id, app, stillWaitingAt, this.ctx, (b) =>
      this.view.takeCap(b),
    );
    this.calls.take++;
    return this.conn.client.cdfgwTake(...args).then(
      (reply) => this.taken(buckets, id, leaseKeys, reply),
      (err: Error) => {
        // A timed-out take may still run on the server: give its lease back (ordered after it on the connection).
        if (this.conn.ready) this.sendRelease(leaseKeys, id, null);
        this.conn.enterDegraded(err.message);
        return this.takeLocal(buckets, performance.now());
      },
    );
  }

  release(buckets: readonly Bucket[]): void {
    for (let i = 0; i < buckets.length; i++) buckets[i].unhold();
    const ticket = this.tickets.take(buckets);
    if (!ticket) {
      this.log.debug({ buckets: buckets.map((b) => b.key) }, 'release without a matching take');
      return;
    }
    if (ticket.local) {
      for (let i = 0; i < buckets.length; i++) {
        const cap = this.view.takeCap(buckets[i]);
        if (cap !== undefined) this.local.cap(buckets[i], cap);
      }
      this.local.release(ticket.local);
      return;
    }
    // Redis away: the lease expires by itself after leaseMs (caps noticed now wait for the next command).
    if (!this.conn.ready) return;
    let caps: Arg[] | null = null;
    for (let i = 0; i < buckets.length; i++) {
      const b = buckets[i];
      const cap = this.view.takeCap(b);
      if (cap === undefined) continue;
      caps ??= [];
      caps.push(this.keys.of(b).tokens, cap, b.rate, b.burst);
    }
    this.sendRelease(ticket.leaseKeys, ticket.id!, caps);
  }

  publishEffective(bucket: Bucket): void {
    if (!this.conn.healthy || !this.conn.ready) {
      this.limits.defer(bucket);
      return;
    }
    const args = publishArgs(
      this.keys.of(bucket),
      this.limits.seenOf(bucket),
      bucket,
      this.adaptiveIntervalMs,
      this.keyTtlMs,
    );
    this.calls.publish++;
    this.conn.client.cdfgwPublish(...args).then(
      // The limits in force now: this replica's change, or the one it lost to.
      ([rate, concurrency]) => this.limits.follow(bucket, Number(rate), Number(concurrency)),
      (err: Error) => {
        this.limits.defer(bucket);
        this.log.debug({ err: err.message, bucket: bucket.key }, 'redis: publishing effective limits failed');
      },
    );
  }

  publishLearned(limit: LimitConfig): void {
    if (this.conn.healthy && this.conn.ready) this.learned.publish(this.conn.client, limit);
  }

  withdrawLearned(key: string): void {
    if (this.conn.healthy && this.conn.ready) this.learned.withdraw(this.conn.client, key);
  }

  onLearned(learned: (limit: LimitConfig) => void, withdrawn: (key: string) => void): void {
    this.learned.onLearned(learned, withdrawn);
  }

  status(): { mode: string; healthy: boolean } {
    return { mode: 'redis', healthy: this.conn.healthy };
  }

  async close(): Promise<void> {
    this.stopRenewing();
    await this.conn.close(() => {
      // Calls still in flight at shutdown: their slots come back now rather than after leaseMs.
      for (const ticket of this.tickets.leases()) this.sendRelease(ticket.leaseKeys, ticket.id!, null);
      this.tickets.clearLeases();
    });
  }

  private taken(
    buckets: readonly Bucket[],
    id: string,
    leaseKeys: string[],
    reply: Array<string | number>,
  ): Blocked | null {
    const blocked = Number(reply[0]);
    for (let i = 0; i < buckets.length; i++) {
      const b = buckets[i];
      const r = takeReplyOf(reply, i);
      this.limits.follow(b, r.rate, r.concurrency);
      this.view.show(b, r.tokens);
      // Refused takes count nothing (Redis answers -1).
      this.shares.taken(b, r.taken);
    }
    if (blocked > 0) return { bucket: buckets[blocked - 1], waitMs: Number(reply[1]) };
    this.calls.admitted++;
    this.tickets.add({ buckets, id, leaseKeys, local: null });
    if (this.renewTimer === null) {
      this.renewTimer = setInterval(() => this.renew(), this.renewMs);
      this.renewTimer.unref();
    }
    for (let i = 0; i < buckets.length; i++) buckets[i].hold();
    return null;
  }

  private takeLocal(buckets: readonly Bucket[], now: number): Blocked | null {
    for (let i = 0; i < buckets.length; i++) {
      const cap = this.view.takeCap(buckets[i]);
      if (cap !== undefined) this.local.cap(buckets[i], cap);
    }
    const { blocked, hold } = this.local.take(buckets, now);
    for (let i = 0; i < buckets.length; i++) this.view.show(buckets[i], hold[i].tokens);
    if (blocked !== null) return blocked;
    for (let i = 0; i < buckets.length; i++) buckets[i].hold();
    this.tickets.add({ buckets, id: null, leaseKeys: [], local: hold });
    return null;
  }

  private sendRelease(leaseKeys: readonly string[], id: string, caps: readonly Arg[] | null): void {
    this.calls.release++;
    this.conn.client.cdfgwRelease(...releaseArgs(leaseKeys, id, this.keyTtlMs, caps)).catch((err: Error) => {
      this.log.debug({ err: err.message }, 'redis: release failed; the lease expires by itself');
    });
  }

  /** Extends the leases of this replica's calls in flight, in one script call. */
  private stopRenewing(): void {
    if (this.renewTimer !== null) clearInterval(this.renewTimer);
    this.renewTimer = null;
  }

  private renew(): void {
    if (this.tickets.leaseCount === 0) {
      this.stopRenewing();
      return;
    }
    if (!this.conn.healthy || !this.conn.ready) return;
    this.learned.maybeRead(this.conn.client, performance.now());
    for (const args of renewArgs(this.tickets.leasesByKey(), this.leaseMs, this.keyTtlMs)) {
      this.calls.renew++;
      this.conn.client.cdfgwRenew(...args).catch((err: Error) => {
        this.log.debug({ err: err.message }, 'redis: renewing leases failed');
      });
    }
  }
}
