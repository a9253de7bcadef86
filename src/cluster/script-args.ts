import { type AppRef, Bucket } from '../quota/index.js';
import type { Arg } from './connection.js';

/** One bucket's keys and configured limits, as the scripts want them (see scripts.ts). */
export interface BucketKeys {
  readonly tokens: string;
  readonly leases: string;
  readonly limits: string;
  readonly waiting: string;
  readonly tags: string;
  /** The Redis Cluster hash tag of every key of this bucket: the scripts' keys share one slot. */
  readonly slot: string;
  /** The limit these figures were read from: a reload gives the bucket a new one. */
  readonly limit: object;
  readonly rate: string;
  readonly burst: string;
  readonly concurrency: string;
  readonly maxRate: string;
  readonly maxConcurrency: string;
}

/** Each bucket's keys under the store's prefix, computed once per bucket. */
export class KeyBook {
  private readonly keys = new WeakMap<Bucket, BucketKeys>();

  constructor(private readonly prefix: string) {}

  of(bucket: Bucket): BucketKeys {
    let k = this.keys.get(bucket);
    if (!k || k.limit !== bucket.limit) {
      const slot = hashTag(bucket.scope);
      const base = `${this.prefix}:${slot}:${bucket.key}`;
      k = {
        tokens: `${base}:tokens`,
        leases: `${base}:leases`,
        limits: `${base}:limits`,
        waiting: `${base}:waiting`,
        tags: `${base}:tags`,
        slot,
        limit: bucket.limit,
        rate: String(bucket.limit.rate),
        // The bucket's own capacity at the configured rate (Bucket may keep some of the burst in reserve).
        burst: String(new Bucket(bucket.limit, bucket.scope, 0).burst),
        concurrency: String(bucket.limit.concurrency),
        maxRate: String(bucket.limit.maxRate),
        maxConcurrency: String(bucket.limit.maxConcurrency),
      };
      this.keys.set(bucket, k);
    }
    return k;
  }
}

/**
 * The hash tag of a bucket's keys: its project (the scope up to the first '/'), so that all the buckets
 * of one request, which share the project, share one Redis Cluster slot. Braces cannot be part of it.
 */
function hashTag(scope: string): string {
  const slash = scope.indexOf('/');
  const project = slash === -1 ? scope : scope.slice(0, slash);
  return `{${project.replace(/[{}]/g, '_')}}`;
}

/** What TAKE needs to know of this replica besides the buckets. */
export interface TakeContext {
  readonly replicaId: string;
  readonly leaseMs: number;
  readonly keyTtlMs: number;
  /** How long a waiting mark lasts at least unless renewed. */
  readonly markMs: number;
}

const NO_APP = { id: '', identity: '', weight: 1, priority: 0, label: '' } satisfies AppRef;

/**
 * Who a take is counted for in the shared fair queue: the caller's identity, as in the local queues'
 * outer level (so that new app names never add shares), except for a client configured with its own
 * weight or priority, which is its own flow under its configured name.
 */
function flowOf(app: AppRef): string {
  return app.weight !== 1 || app.priority !== 0 ? `app:${app.id}` : `id:${app.identity}`;
}

/**
 * TAKE's arguments: numkeys, KEYS (5 per bucket), then ARGV: 9 about the take and 6 per bucket.
 * `capOf` gives the cap to send for a bucket, if any (asked once per bucket, in order).
 */
export function takeArgs(
  keys: KeyBook,
  buckets: readonly Bucket[],
  id: string,
  app: AppRef | undefined,
  stillWaitingAt: Bucket | undefined,
  ctx: TakeContext,
  capOf: (bucket: Bucket) => number | undefined,
): { args: Arg[]; leaseKeys: string[] } {
  const n = buckets.length;
  const who = app ?? NO_APP;
  const args: Arg[] = new Array(11 * n + 10);
  args[0] = 5 * n;
  const leaseKeys: string[] = new Array(n);
  const a = 5 * n + 1;
  args[a] = id;
  args[a + 1] = ctx.leaseMs;
  args[a + 2] = ctx.keyTtlMs;
  args[a + 3] = app === undefined ? '' : flowOf(app);
  args[a + 4] = who.weight > 0 ? who.weight : 1;
  args[a + 5] = who.priority;
  args[a + 6] = ctx.replicaId;
  args[a + 7] = ctx.markMs;
  args[a + 8] = stillWaitingAt === undefined ? 0 : buckets.indexOf(stillWaitingAt) + 1;
  for (let i = 0; i < n; i++) {
    const b = buckets[i];
    const k = keys.of(b);
    args[1 + 5 * i] = k.tokens;
    args[2 + 5 * i] = k.leases;
    args[3 + 5 * i] = k.limits;
    args[4 + 5 * i] = k.waiting;
    args[5 + 5 * i] = k.tags;
    args[a + 9 + 6 * i] = k.rate;
    args[a + 10 + 6 * i] = k.burst;
    args[a + 11 + 6 * i] = k.concurrency;
    const cap = capOf(b);
    args[a + 12 + 6 * i] = cap === undefined ? '' : String(cap);
    args[a + 13 + 6 * i] = k.maxRate;
    args[a + 14 + 6 * i] = k.maxConcurrency;
    leaseKeys[i] = k.leases;
  }
  return { args, leaseKeys };
}

/** TAKE's answer for bucket i: its effective limits and tokens left. */
export function takeReplyOf(
  reply: Array<string | number>,
  i: number,
): { rate: number; concurrency: number; tokens: number; taken: number } {
  const at = 2 + 4 * i;
  return {
    rate: Number(reply[at]),
    concurrency: Number(reply[at + 1]),
    tokens: Number(reply[at + 2]),
    taken: Number(reply[at + 3]),
  };
}

/**
 * RELEASE's numkeys, KEYS and ARGV. `caps`: per capped bucket its tokens key, cap, effective rate and
 * burst, or null for none.
 */
export function releaseArgs(
  leaseKeys: readonly string[],
  id: string,
  keyTtlMs: number,
  caps: readonly Arg[] | null,
): [number, ...Arg[]] {
  const n = leaseKeys.length;
  if (caps === null) return [n, ...leaseKeys, id, n, keyTtlMs];
  const keys: Arg[] = [];
  const args: Arg[] = [];
  for (let j = 0; j < caps.length; j += 4) {
    keys.push(caps[j]);
    args.push(caps[j + 1], caps[j + 2], caps[j + 3]);
  }
  return [n + keys.length, ...leaseKeys, ...keys, id, n, keyTtlMs, ...args];
}

/**
 * RENEW's numkeys, KEYS and ARGV, from lease ids grouped by lease set: one call per hash slot (a Redis
 * Cluster runs a script's keys on one node).
 */
export function renewArgs(byKey: Map<string, string[]>, leaseMs: number, keyTtlMs: number): Array<[number, ...Arg[]]> {
  const bySlot = new Map<string, string[]>();
  for (const key of byKey.keys()) {
    const open = key.indexOf('{');
    const slot = open === -1 ? '' : key.slice(open, key.indexOf('}', open) + 1);
    const keys = bySlot.get(slot);
    if (keys) keys.push(key);
    else bySlot.set(slot, [key]);
  }
  const calls: Array<[number, ...Arg[]]> = [];
  for (const keys of bySlot.values()) {
    const ids = keys.map((key) => byKey.get(key)!.join(' '));
    calls.push([keys.length, ...keys, leaseMs, keyTtlMs, ...ids]);
  }
  return calls;
}

/** PUBLISH's numkeys, KEYS and ARGV (see PUBLISH). */
export function publishArgs(
  k: BucketKeys,
  seen: { rate: number; concurrency: number },
  bucket: Bucket,
  intervalMs: number,
  keyTtlMs: number,
): [number, ...Arg[]] {
  return [
    1,
    k.limits,
    String(seen.rate),
    String(seen.concurrency),
    String(bucket.rate),
    String(bucket.concurrency),
    k.rate,
    k.concurrency,
    intervalMs,
    keyTtlMs,
    k.maxRate,
    k.maxConcurrency,
  ];
}
