import { LRUCache } from 'lru-cache';
import type { HeaderMap } from '../proxy/headers.js';
import type { CachedAnswer } from './types.js';

/** A stored answer with what the cache needs to judge it. */
export interface Entry extends CachedAnswer {
  /** Date.now() until which it is fresh; after that it may only be served as STALE. */
  freshUntil: number;
  /** project + family: the scope a write invalidates. */
  scope: string;
  /** Bytes counted against maxBytes. */
  size: number;
}

export interface StoreCounters {
  evictions: number;
  expired: number;
  invalidated: number;
}

/** A rough count of the bytes an entry holds besides its body: headers, key, bookkeeping. */
const OVERHEAD = 256;

export function entrySize(key: string, headers: HeaderMap, body: Buffer): number {
  let size = OVERHEAD + key.length + body.length;
  for (const name in headers) {
    const v = headers[name];
    size += name.length + (Array.isArray(v) ? v.reduce((n, s) => n + s.length, 0) : v.length);
  }
  return size;
}

export function scopeOf(project: string, family: string): string {
  return `${project}\u0000${family}`;
}

/**
 * The stored answers: an LRU bounded by bytes, expiring lazily (no timers), plus an index of the keys
 * in each project+family so that a write can drop them, and a generation per scope so that an answer
 * fetched before a write is not stored after it.
 */
export class EntryStore {
  readonly counters: StoreCounters = { evictions: 0, expired: 0, invalidated: 0 };
  private readonly lru: LRUCache<string, Entry> | null;
  private readonly byScope = new Map<string, Set<string>>();
  private readonly generations = new Map<string, number>();

  constructor(
    readonly maxBytes: number,
    /** Kept past freshness this long, for stale-if-error. */
    private readonly keepStaleMs: number,
  ) {
    this.lru =
      maxBytes > 0
        ? new LRUCache<string, Entry>({
            maxSize: maxBytes,
            sizeCalculation: (entry) => entry.size,
            ttlAutopurge: false,
            allowStale: false,
            updateAgeOnGet: false,
            dispose: (entry, key, reason) => this.disposed(entry, key, reason),
          })
        : null;
  }

  get(key: string): Entry | undefined {
    return this.lru?.get(key);
  }

  /** Stores unless a write to its scope happened since `generation` was read. */
  set(key: string, entry: Entry, ttlMs: number, generation: number): boolean {
    if (this.lru === null || entry.size > this.maxBytes) return false;
    if (this.generation(entry.scope) !== generation) return false;
    this.lru.set(key, entry, { ttl: ttlMs + this.keepStaleMs });
    if (!this.lru.has(key)) return false;
    let keys = this.byScope.get(entry.scope);
    if (keys === undefined) {
      keys = new Set();
      this.byScope.set(entry.scope, keys);
    }
    keys.add(key);
    return true;
  }

  generation(scope: string): number {
    return this.generations.get(scope) ?? 0;
  }

  /** Drops every entry of a project+family, for all identities; returns how many. */
  invalidate(scope: string): number {
    this.generations.set(scope, this.generation(scope) + 1);
    const keys = this.byScope.get(scope);
    if (keys === undefined || this.lru === null) return 0;
    this.byScope.delete(scope);
    let n = 0;
    for (const key of keys) if (this.lru.delete(key)) n++;
    this.counters.invalidated += n;
    return n;
  }

  get entries(): number {
    return this.lru?.size ?? 0;
  }

  get bytes(): number {
    return this.lru?.calculatedSize ?? 0;
  }

  clear(): void {
    this.lru?.clear();
    this.byScope.clear();
  }

  private disposed(entry: Entry, key: string, reason: LRUCache.DisposeReason): void {
    // Replaced by a newer answer under the same key: same scope, the index stays right.
    if (reason === 'set') return;
    if (reason === 'evict') this.counters.evictions++;
    else if (reason === 'expire') this.counters.expired++;
    const keys = this.byScope.get(entry.scope);
    if (keys === undefined) return;
    keys.delete(key);
    if (keys.size === 0) this.byScope.delete(entry.scope);
  }
}
