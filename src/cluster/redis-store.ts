import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { ClusterConfig } from '../config/index.js';
import { type Blocked, Bucket, type QuotaStore } from '../quota/index.js';
import { type LocalHold, LocalShare } from './degraded.js';
import { PUBLISH, RELEASE, RENEW, TAKE } from './scripts.js';

/** Waiting requests look again this often for a slot another replica may have freed. */
const SLOT_POLL_MS = 15;
/** Keys of unused buckets expire after this long at least. */
const MIN_KEY_TTL_MS = 60_000;
/** While degraded but connected (commands timed out), Redis is pinged this often to see if it is back. */
const PROBE_MS = 1000;

type Arg = string | number;

/** The client with the store's scripts defined on it (ioredis adds a method per script). */
interface ScriptedRedis extends Redis {
  cdfgwTake(...args: Arg[]): Promise<Array<string | number>>;
  cdfgwRelease(numKeys: number, ...args: Arg[]): Promise<unknown>;
  cdfgwRenew(numKeys: number, ...args: Arg[]): Promise<number>;
  cdfgwPublish(numKeys: number, ...args: Arg[]): Promise<[string, string]>;
}

/** One bucket's keys and configured limits, as the take script wants them. */
interface BucketKeys {
  readonly tokens: string;
  readonly leases: string;
  readonly limits: string;
  readonly rate: string;
  readonly burst: string;
  readonly concurrency: string;
}

/** One take that succeeded: where its slots are held, so release gives them back there. */
interface Ticket {
  readonly buckets: readonly Bucket[];
  /** Lease id in Redis, with the lease sets it is in; null when the local share answered. */
  readonly id: string | null;
  readonly leaseKeys: readonly string[];
  readonly local: LocalHold | null;
}

export interface RedisStoreOptions {
  config: ClusterConfig;
  redisUrl: string;
  /** adaptive.intervalMs: replicas together raise a bucket's shared limits at most once per interval. */
  adaptiveIntervalMs: number;
  log: Logger;
}

/**
 * Buckets shared by every replica through Redis: one Lua script per decision takes a token and a lease
 * from all of a request's buckets at once, or tells which bucket said no. Fairness stays local (the
 * scheduler's queues); tokens and slots are global. While Redis cannot be reached, decisions fall back
 * to local buckets holding 1/expectedReplicas of each limit, and the store reports itself unhealthy.
 */
export class RedisStore implements QuotaStore {
  readonly slotPollMs = SLOT_POLL_MS;
  private readonly client: ScriptedRedis;
  private readonly log: Logger;
  private readonly prefix: string;
  private readonly leaseMs: number;
  private readonly keyTtlMs: number;
  private readonly local: LocalShare;
  private readonly keys = new WeakMap<Bucket, BucketKeys>();
  /** The token count this store last put in each bucket (to notice when someone else lowers it). */
  private readonly shown = new WeakMap<Bucket, number>();
  /** Caps on buckets' tokens not sent to Redis yet. */
  private readonly caps = new WeakMap<Bucket, number>();
  /** The shared effective limits each bucket was last seen with: what its adaptive changes start from. */
  private readonly seen = new WeakMap<Bucket, { rate: number; concurrency: number }>();
  private readonly adaptiveIntervalMs: number;
  /** Tickets by the buckets array of their take (the scheduler releases with the same array). */
  private readonly tickets = new WeakMap<readonly Bucket[], Ticket[]>();
  /** This replica's leases in Redis, for renewal. */
  private readonly live = new Map<string, Ticket>();
  /** Buckets whose limits changed while Redis was away: published when it is back. */
  private readonly unpublished = new Set<Bucket>();
  private readonly replicaId = randomBytes(6).toString('hex');
  private seq = 0;
  private degraded = false;
  private lastError: string | null = null;
  private closing = false;
  private readonly renewTimer: NodeJS.Timeout;
  private probeTimer: NodeJS.Timeout | null = null;

  constructor(options: RedisStoreOptions) {
    const { config, log } = options;
    this.log = log;
    this.prefix = config.keyPrefix;
    this.leaseMs = config.leaseMs;
    this.adaptiveIntervalMs = options.adaptiveIntervalMs;
    this.keyTtlMs = Math.max(config.leaseMs * 4, MIN_KEY_TTL_MS);
    this.local = new LocalShare(config.expectedReplicas);
    this.client = new Redis(options.redisUrl, {
      lazyConnect: true,
      // Nothing waits for a connection: a command while Redis is away fails at once, and the local share answers.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      commandTimeout: config.commandTimeoutMs,
      connectTimeout: Math.max(1000, config.commandTimeoutMs * 4),
      retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 2000),
    }) as ScriptedRedis;
    this.client.defineCommand('cdfgwTake', { lua: TAKE });
    this.client.defineCommand('cdfgwRelease', { lua: RELEASE });
    this.client.defineCommand('cdfgwRenew', { lua: RENEW });
    this.client.defineCommand('cdfgwPublish', { lua: PUBLISH });
    this.client.on('error', (err: Error) => {
      this.lastError = err.message;
      log.debug({ err: err.message }, 'redis connection error');
    });
    this.client.on('close', () => {
      if (!this.closing) this.enterDegraded(this.lastError ?? 'connection closed');
    });
    this.client.on('ready', () => this.leaveDegraded());
    this.renewTimer = setInterval(() => this.renew(), Math.max(50, Math.floor(config.leaseMs / 3)));
    this.renewTimer.unref();
  }

  /** Connects; when Redis cannot be reached the store starts degraded and keeps trying in the background. */
  async start(): Promise<void> {
    try {
      await this.client.connect();
    } catch (err) {
      this.enterDegraded((err as Error).message);
    }
  }

  take(buckets: readonly Bucket[], now: number): Blocked | null | Promise<Blocked | null> {
    if (this.degraded || this.client.status !== 'ready') {
      if (!this.degraded) this.enterDegraded(`connection ${this.client.status}`);
      return this.takeLocal(buckets, now);
    }
    const id = `${this.replicaId}.${(++this.seq).toString(36)}`;
    const n = buckets.length;
    // EVALSHA numkeys, KEYS (3 per bucket), then ARGV: id, leaseMs, TTL and 4 per bucket (see TAKE).
    const args: Arg[] = new Array(7 * n + 4);
    args[0] = 3 * n;
    const leaseKeys: string[] = new Array(n);
    const a = 3 * n + 1;
    args[a] = id;
    args[a + 1] = this.leaseMs;
    args[a + 2] = this.keyTtlMs;
    for (let i = 0; i < n; i++) {
      const b = buckets[i];
      const k = this.keysOf(b);
      args[1 + 3 * i] = k.tokens;
      args[2 + 3 * i] = k.leases;
      args[3 + 3 * i] = k.limits;
      args[a + 3 + 4 * i] = k.rate;
      args[a + 4 + 4 * i] = k.burst;
      args[a + 5 + 4 * i] = k.concurrency;
      const cap = this.takeCap(b);
      args[a + 6 + 4 * i] = cap === undefined ? '' : String(cap);
      leaseKeys[i] = k.leases;
    }
    return this.client.cdfgwTake(...args).then(
      (reply) => this.taken(buckets, id, leaseKeys, reply),
      (err: Error) => {
        // A timed-out take may still run on the server: give its lease back (ordered after it on the connection).
        if (this.client.status === 'ready') this.sendRelease(leaseKeys, id, null);
        this.enterDegraded(err.message);
        return this.takeLocal(buckets, performance.now());
      },
    );
  }

  release(buckets: readonly Bucket[]): void {
    for (let i = 0; i < buckets.length; i++) if (buckets[i].inFlight > 0) buckets[i].inFlight--;
    const ticket = this.popTicket(buckets);
    if (!ticket) {
      this.log.debug({ buckets: buckets.map((b) => b.key) }, 'release without a matching take');
      return;
    }
    if (ticket.local) {
      for (let i = 0; i < buckets.length; i++) {
        const cap = this.takeCap(buckets[i]);
        if (cap !== undefined) this.local.cap(buckets[i], cap);
      }
      this.local.release(ticket.local);
      return;
    }
    this.live.delete(ticket.id!);
    // Redis away: the lease expires by itself after leaseMs (caps noticed now wait for the next command).
    if (this.client.status !== 'ready') return;
    let caps: Arg[] | null = null;
    for (let i = 0; i < buckets.length; i++) {
      const b = buckets[i];
      const cap = this.takeCap(b);
      if (cap === undefined) continue;
      caps ??= [];
      caps.push(this.keysOf(b).tokens, cap, b.rate, b.burst);
    }
    this.sendRelease(ticket.leaseKeys, ticket.id!, caps);
  }

  publishEffective(bucket: Bucket): void {
    if (this.degraded || this.client.status !== 'ready') {
      this.unpublished.add(bucket);
      return;
    }
    const k = this.keysOf(bucket);
    const seen = this.seen.get(bucket) ?? { rate: bucket.limit.rate, concurrency: bucket.limit.concurrency };
    this.client
      .cdfgwPublish(
        1,
        k.limits,
        String(seen.rate),
        String(seen.concurrency),
        String(bucket.rate),
        String(bucket.concurrency),
        k.rate,
        k.concurrency,
        this.adaptiveIntervalMs,
        this.keyTtlMs,
      )
      .then(
        // The limits in force now: this replica's change, or the one it lost to.
        ([rate, concurrency]) => this.follow(bucket, Number(rate), Number(concurrency)),
        (err: Error) => {
          this.unpublished.add(bucket);
          this.log.debug({ err: err.message, bucket: bucket.key }, 'redis: publishing effective limits failed');
        },
      );
  }

  status(): { mode: string; healthy: boolean } {
    return { mode: 'redis', healthy: !this.degraded };
  }

  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.renewTimer);
    this.stopProbe();
    if (this.client.status === 'ready') {
      // Calls still in flight at shutdown: their slots come back now rather than after leaseMs.
      for (const ticket of this.live.values()) this.sendRelease(ticket.leaseKeys, ticket.id!, null);
      this.live.clear();
      try {
        await this.client.quit();
      } catch {
        // Already gone.
      }
    }
    this.client.disconnect();
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
      this.follow(b, Number(reply[2 + 3 * i]), Number(reply[3 + 3 * i]));
      this.show(b, Number(reply[4 + 3 * i]));
    }
    if (blocked > 0) return { bucket: buckets[blocked - 1], waitMs: Number(reply[1]) };
    const ticket: Ticket = { buckets, id, leaseKeys, local: null };
    this.live.set(id, ticket);
    this.pushTicket(buckets, ticket);
    for (let i = 0; i < buckets.length; i++) buckets[i].inFlight++;
    return null;
  }

  private takeLocal(buckets: readonly Bucket[], now: number): Blocked | null {
    for (let i = 0; i < buckets.length; i++) {
      const cap = this.takeCap(buckets[i]);
      if (cap !== undefined) this.local.cap(buckets[i], cap);
    }
    const { blocked, hold } = this.local.take(buckets, now);
    for (let i = 0; i < buckets.length; i++) this.show(buckets[i], hold[i].tokens);
    if (blocked !== null) return blocked;
    for (let i = 0; i < buckets.length; i++) buckets[i].inFlight++;
    this.pushTicket(buckets, { buckets, id: null, leaseKeys: [], local: hold });
    return null;
  }

  private pushTicket(buckets: readonly Bucket[], ticket: Ticket): void {
    const list = this.tickets.get(buckets);
    if (list) list.push(ticket);
    else this.tickets.set(buckets, [ticket]);
  }

  private popTicket(buckets: readonly Bucket[]): Ticket | undefined {
    const list = this.tickets.get(buckets);
    if (list) {
      const ticket = list.shift();
      if (list.length === 0) this.tickets.delete(buckets);
      return ticket;
    }
    // Released with another array than it was taken with: any of this replica's leases on the same buckets.
    for (const ticket of this.live.values()) {
      if (ticket.buckets.length === buckets.length && ticket.buckets.every((b, i) => b === buckets[i])) {
        const others = this.tickets.get(ticket.buckets);
        if (others) {
          others.splice(others.indexOf(ticket), 1);
          if (others.length === 0) this.tickets.delete(ticket.buckets);
        }
        return ticket;
      }
    }
    return undefined;
  }

  /** Another replica's adaptive limits (or this one's, published): every replica follows them. */
  private follow(bucket: Bucket, rate: number, concurrency: number): void {
    if (rate !== bucket.rate || concurrency !== bucket.concurrency) bucket.setEffective(rate, concurrency);
    const seen = this.seen.get(bucket);
    if (seen) {
      seen.rate = rate;
      seen.concurrency = concurrency;
    } else this.seen.set(bucket, { rate, concurrency });
  }

  /** Copies the shared (or local share's) token count into the bucket, for metrics and to see it lowered. */
  private show(bucket: Bucket, tokens: number): void {
    this.noteLowered(bucket);
    bucket.tokens = tokens;
    bucket.refilledAt = performance.now();
    this.shown.set(bucket, tokens);
  }

  /**
   * The bucket's tokens were lowered by someone else since this store last set them: the adaptive limits
   * do that on a 429 (CDF's bucket is empty, and may have charged the throttled call). The shared bucket
   * must follow, or every replica's next call meets the same wall: kept as a cap for the next command.
   */
  private noteLowered(bucket: Bucket): void {
    const shown = this.shown.get(bucket);
    if (shown === undefined || !(bucket.tokens < shown)) return;
    const pending = this.caps.get(bucket);
    this.caps.set(bucket, pending === undefined ? bucket.tokens : Math.min(pending, bucket.tokens));
    this.shown.set(bucket, bucket.tokens);
  }

  /** The cap to send with the next command on this bucket, once. */
  private takeCap(bucket: Bucket): number | undefined {
    this.noteLowered(bucket);
    const cap = this.caps.get(bucket);
    if (cap !== undefined) this.caps.delete(bucket);
    return cap;
  }

  /** `caps`: per capped bucket its tokens key, cap, effective rate and burst (see RELEASE). */
  private sendRelease(leaseKeys: readonly string[], id: string, caps: readonly Arg[] | null): void {
    const n = leaseKeys.length;
    let sent: Promise<unknown>;
    if (caps === null) sent = this.client.cdfgwRelease(n, ...leaseKeys, id, n, this.keyTtlMs);
    else {
      const keys: Arg[] = [];
      const args: Arg[] = [];
      for (let j = 0; j < caps.length; j += 4) {
        keys.push(caps[j]);
        args.push(caps[j + 1], caps[j + 2], caps[j + 3]);
      }
      sent = this.client.cdfgwRelease(n + keys.length, ...leaseKeys, ...keys, id, n, this.keyTtlMs, ...args);
    }
    sent.catch((err: Error) => {
      this.log.debug({ err: err.message }, 'redis: release failed; the lease expires by itself');
    });
  }

  /** Extends the leases of this replica's calls in flight, in one script call. */
  private renew(): void {
    if (this.live.size === 0 || this.degraded || this.client.status !== 'ready') return;
    const byKey = new Map<string, string[]>();
    for (const ticket of this.live.values()) {
      for (const key of ticket.leaseKeys) {
        const ids = byKey.get(key);
        if (ids) ids.push(ticket.id!);
        else byKey.set(key, [ticket.id!]);
      }
    }
    const keys = [...byKey.keys()];
    const ids = [...byKey.values()].map((list) => list.join(' '));
    this.client.cdfgwRenew(keys.length, ...keys, this.leaseMs, this.keyTtlMs, ...ids).catch((err: Error) => {
      this.log.debug({ err: err.message }, 'redis: renewing leases failed');
    });
  }

  private keysOf(bucket: Bucket): BucketKeys {
    let k = this.keys.get(bucket);
    if (!k) {
      const base = `${this.prefix}:${bucket.key}`;
      k = {
        tokens: `${base}:tokens`,
        leases: `${base}:leases`,
        limits: `${base}:limits`,
        rate: String(bucket.limit.rate),
        // The bucket's own capacity at the configured rate (Bucket may keep some of the burst in reserve).
        burst: String(new Bucket(bucket.limit, bucket.scope, 0).burst),
        concurrency: String(bucket.limit.concurrency),
      };
      this.keys.set(bucket, k);
    }
    return k;
  }

  private enterDegraded(reason: string): void {
    if (this.closing) return;
    if (!this.degraded) {
      this.degraded = true;
      this.log.warn(
        { reason, share: `1/${this.local.replicas}` },
        'redis unavailable: quota store degraded to local buckets with a share of each limit',
      );
    }
    // Connected but not answering (timeouts): look again now and then. A lost connection reconnects by itself.
    if (!this.probeTimer) {
      this.probeTimer = setInterval(() => this.probe(), PROBE_MS);
      this.probeTimer.unref();
    }
  }

  private probe(): void {
    if (!this.degraded) {
      this.stopProbe();
      return;
    }
    if (this.client.status !== 'ready') return;
    this.client.ping().then(
      () => this.leaveDegraded(),
      () => {},
    );
  }

  private leaveDegraded(): void {
    this.stopProbe();
    if (!this.degraded || this.closing) return;
    this.degraded = false;
    this.lastError = null;
    this.log.info('redis is back: quota store shared again');
    const pending = [...this.unpublished];
    this.unpublished.clear();
    for (const bucket of pending) this.publishEffective(bucket);
  }

  private stopProbe(): void {
    if (this.probeTimer) clearInterval(this.probeTimer);
    this.probeTimer = null;
  }
}
