import { Bucket } from '../quota/index.js';
import type { Arg } from './connection.js';

/** One bucket's keys and configured limits, as the scripts want them (see scripts.ts). */
export interface BucketKeys {
  readonly tokens: string;
  readonly leases: string;
  readonly limits: string;
  readonly rate: string;
  readonly burst: string;
  readonly concurrency: string;
}

/** Each bucket's keys under the store's prefix, computed once per bucket. */
export class KeyBook {
  private readonly keys = new WeakMap<Bucket, BucketKeys>();

  constructor(private readonly prefix: string) {}

  of(bucket: Bucket): BucketKeys {
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
}

/**
 * TAKE's arguments: numkeys, KEYS (3 per bucket), then ARGV: id, leaseMs, TTL and 4 per bucket.
 * `capOf` gives the cap to send for a bucket, if any (asked once per bucket, in order).
 */
export function takeArgs(
  keys: KeyBook,
  buckets: readonly Bucket[],
  id: string,
  leaseMs: number,
  keyTtlMs: number,
  capOf: (bucket: Bucket) => number | undefined,
): { args: Arg[]; leaseKeys: string[] } {
  const n = buckets.length;
  const args: Arg[] = new Array(7 * n + 4);
  args[0] = 3 * n;
  const leaseKeys: string[] = new Array(n);
  const a = 3 * n + 1;
  args[a] = id;
  args[a + 1] = leaseMs;
  args[a + 2] = keyTtlMs;
  for (let i = 0; i < n; i++) {
    const b = buckets[i];
    const k = keys.of(b);
    args[1 + 3 * i] = k.tokens;
    args[2 + 3 * i] = k.leases;
    args[3 + 3 * i] = k.limits;
    args[a + 3 + 4 * i] = k.rate;
    args[a + 4 + 4 * i] = k.burst;
    args[a + 5 + 4 * i] = k.concurrency;
    const cap = capOf(b);
    args[a + 6 + 4 * i] = cap === undefined ? '' : String(cap);
    leaseKeys[i] = k.leases;
  }
  return { args, leaseKeys };
}

/** TAKE's answer for bucket i: its effective limits and tokens left. */
export function takeReplyOf(
  reply: Array<string | number>,
  i: number,
): { rate: number; concurrency: number; tokens: number } {
  return { rate: Number(reply[2 + 3 * i]), concurrency: Number(reply[3 + 3 * i]), tokens: Number(reply[4 + 3 * i]) };
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

/** RENEW's numkeys, KEYS and ARGV, from lease ids grouped by lease set. */
export function renewArgs(byKey: Map<string, string[]>, leaseMs: number, keyTtlMs: number): [number, ...Arg[]] {
  const keys = [...byKey.keys()];
  const ids = [...byKey.values()].map((list) => list.join(' '));
  return [keys.length, ...keys, leaseMs, keyTtlMs, ...ids];
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
  ];
}
