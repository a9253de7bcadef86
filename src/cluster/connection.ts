import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import type { ClusterConfig } from '../config/index.js';
import { parseRedisTarget } from './redis-target.js';
import { PUBLISH, RELEASE, RENEW, TAKE } from './scripts.js';

/** While degraded but connected (commands timed out), Redis is pinged this often to see if it is back. */
const PROBE_MS = 1000;

export type Arg = string | number;

const SCRIPTS = [TAKE, RELEASE, RENEW, PUBLISH];

/** The store's scripts, defined on the client (ioredis adds a method per script). */
interface Scripts {
  cdfgwTake(...args: Arg[]): Promise<Array<string | number>>;
  cdfgwRelease(numKeys: number, ...args: Arg[]): Promise<unknown>;
  cdfgwRenew(numKeys: number, ...args: Arg[]): Promise<number>;
  cdfgwPublish(numKeys: number, ...args: Arg[]): Promise<[string, string]>;
}

/** One Redis, the master Sentinels name, or a Redis Cluster (every script's keys in one slot). */
export type ScriptedRedis = (Redis | Cluster) & Scripts;

/**
 * The client for `cluster.redisUrl`. Nothing waits for a connection: a command while Redis is away
 * fails at once, and the local share answers.
 */
function createClient(redisUrl: string, config: ClusterConfig): ScriptedRedis {
  const options: RedisOptions = {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    commandTimeout: config.commandTimeoutMs,
    connectTimeout: Math.max(1000, config.commandTimeoutMs * 4),
  };
  const retry = (attempt: number) => Math.min(50 * 2 ** attempt, 2000);
  const target = parseRedisTarget(redisUrl);
  let client: Redis | Cluster;
  if (target.kind === 'single') client = new Redis(redisUrl, { ...options, retryStrategy: retry });
  else if (target.kind === 'sentinel')
    client = new Redis({
      ...options,
      ...target.auth,
      sentinels: target.sentinels,
      name: target.name,
      db: target.db,
      enableTLSForSentinelMode: target.tls,
      ...(target.tls ? { tls: {} } : {}),
      retryStrategy: retry,
      sentinelRetryStrategy: retry,
    });
  else
    client = new Cluster(target.nodes, {
      lazyConnect: true,
      enableOfflineQueue: false,
      clusterRetryStrategy: retry,
      // A moved slot is followed at once; a cluster without a master for a slot answers like Redis away.
      retryDelayOnClusterDown: 0,
      retryDelayOnTryAgain: 0,
      slotsRefreshTimeout: Math.max(1000, config.commandTimeoutMs * 4),
      redisOptions: { ...options, ...target.auth, ...(target.tls ? { tls: {} } : {}) },
    });
  client.defineCommand('cdfgwTake', { lua: TAKE });
  client.defineCommand('cdfgwRelease', { lua: RELEASE });
  client.defineCommand('cdfgwRenew', { lua: RENEW });
  client.defineCommand('cdfgwPublish', { lua: PUBLISH });
  return client as ScriptedRedis;
}

export interface ConnectionOptions {
  config: ClusterConfig;
  redisUrl: string;
  log: Logger;
  /** Said in the degraded warning: what each replica keeps of a limit while Redis is away. */
  share: string;
  /** Redis is reachable again after being degraded. */
  onBack(): void;
}

/**
 * The store's connection to Redis and whether it can be used: degraded from the first failure (a lost
 * connection, a timed-out command) until Redis answers again.
 */
export class RedisConnection {
  readonly client: ScriptedRedis;
  private readonly log: Logger;
  private readonly share: string;
  private readonly onBack: () => void;
  private degraded = false;
  private lastError: string | null = null;
  private closing = false;
  private probeTimer: NodeJS.Timeout | null = null;

  constructor(options: ConnectionOptions) {
    const { config, log } = options;
    this.log = log;
    this.share = options.share;
    this.onBack = options.onBack;
    this.client = createClient(options.redisUrl, config);
    this.client.on('error', (err: Error) => {
      this.lastError = err.message;
      log.debug({ err: err.message }, 'redis connection error');
    });
    this.client.on('close', () => {
      if (!this.closing) this.enterDegraded(this.lastError ?? 'connection closed');
    });
    this.client.on('ready', () => this.leaveDegraded());
  }

  /** Connects; when Redis cannot be reached the store starts degraded and keeps trying in the background. */
  async start(): Promise<void> {
    try {
      await this.client.connect();
      await this.warmUp();
    } catch (err) {
      this.enterDegraded((err as Error).message);
    }
  }

  /**
   * Connects to every master and loads the scripts there, so that the first decisions do not pay for a
   * connection or a script compile (and time out on a busy machine).
   */
  private async warmUp(): Promise<void> {
    const nodes: Redis[] = this.client instanceof Cluster ? this.client.nodes('master') : [this.client];
    await Promise.all(nodes.map((node) => Promise.all(SCRIPTS.map((lua) => node.script('LOAD', lua)))));
  }

  /** Connected right now (a command may be sent). */
  get ready(): boolean {
    return this.client.status === 'ready';
  }

  /** Connected and not degraded: decisions go to Redis. Notices a lost connection first. */
  usable(): boolean {
    if (this.degraded) return false;
    if (this.client.status === 'ready') return true;
    this.enterDegraded(`connection ${this.client.status}`);
    return false;
  }

  get healthy(): boolean {
    return !this.degraded;
  }

  enterDegraded(reason: string): void {
    if (this.closing) return;
    if (!this.degraded) {
      this.degraded = true;
      this.log.warn(
        { reason, share: this.share },
        'redis unavailable: quota store degraded to local buckets with a share of each limit',
      );
    }
    // Connected but not answering (timeouts): look again now and then. A lost connection reconnects by itself.
    if (!this.probeTimer) {
      this.probeTimer = setInterval(() => this.probe(), PROBE_MS);
      this.probeTimer.unref();
    }
  }

  /** Stops degraded-state handling, runs `beforeQuit` while still connected, then disconnects. */
  async close(beforeQuit: () => void): Promise<void> {
    this.closing = true;
    this.stopProbe();
    if (this.client.status === 'ready') {
      beforeQuit();
      try {
        await this.client.quit();
      } catch {
        // Already gone.
      }
    }
    this.client.disconnect();
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
    this.onBack();
  }

  private stopProbe(): void {
    if (this.probeTimer) clearInterval(this.probeTimer);
    this.probeTimer = null;
  }
}
