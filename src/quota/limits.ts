import { PatternIndex, type RouteInfo } from '../cdf/index.js';
import type { LimitConfig } from '../config/index.js';

const CACHE_MAX = 4096;

/** Whether a bucket's `classes` cover an operation's class; aggregate calls are analytical calls too. */
export function coversClass(limit: LimitConfig, cls: RouteInfo['cls']): boolean {
  const classes = limit.classes;
  if (classes === null || classes === undefined) return true;
  if (classes.includes(cls)) return true;
  return cls === 'aggregate' && classes.includes('analytical');
}

/** The key a learned bucket for one operation is filed under. */
export function operationKey(method: string, route: RouteInfo): string | null {
  return route.template === null ? null : `${method} ${route.template}`;
}

/** The key a learned bucket for one class of an API is filed under. */
export function classKey(route: RouteInfo): string {
  return `${route.family} ${route.cls}`;
}

/** The key a learned bucket for a whole API is filed under. */
export function apiKey(route: RouteInfo): string {
  return `${route.family} *`;
}

/**
 * Which limits apply to a request: every configured bucket whose patterns, methods and classes match (the
 * `fallback` ones only when nothing else did), plus the learned buckets of its operation and of its class.
 * Answers are memoised by method and path, since apps repeat the same few paths; the memo is dropped when a
 * bucket is learned.
 */
export class LimitTable {
  private readonly index: PatternIndex<LimitConfig>;
  private readonly memo = new Map<string, readonly LimitConfig[]>();
  /** Learned buckets by operation ("POST /assets/list"), class ("assets analytical") and API ("assets *"). */
  private readonly learnedByKey = new Map<string, LimitConfig>();

  constructor(readonly limits: readonly LimitConfig[]) {
    this.index = new PatternIndex(limits, (l) => l.match);
  }

  match(method: string, rest: string, route: RouteInfo): readonly LimitConfig[] {
    const key = `${method} ${rest}`;
    let hit = this.memo.get(key);
    if (hit) return hit;
    const all = this.index
      .matchAll(rest)
      .filter((l) => (l.methods === null || l.methods.includes(method)) && coversClass(l, route.cls));
    const specific = all.filter((l) => !l.fallback);
    hit = specific.length > 0 ? specific : all;
    if (this.learnedByKey.size > 0) {
      const byApi = this.learnedByKey.get(apiKey(route));
      const byClass = this.learnedByKey.get(classKey(route));
      const op = operationKey(method, route);
      const byOp = op === null ? undefined : this.learnedByKey.get(op);
      if (byApi || byClass || byOp) {
        const more = [...hit];
        if (byApi) more.push(byApi);
        if (byClass) more.push(byClass);
        if (byOp) more.push(byOp);
        hit = more;
      }
    }
    if (this.memo.size >= CACHE_MAX) this.memo.clear();
    this.memo.set(key, hit);
    return hit;
  }

  /** Adds (or replaces) a learned bucket under its key. */
  learn(key: string, limit: LimitConfig): void {
    this.learnedByKey.set(key, limit);
    this.memo.clear();
  }

  /** Drops a learned bucket (a wider one learned later explains its 429s). */
  unlearn(key: string): void {
    if (this.learnedByKey.delete(key)) this.memo.clear();
  }

  learnedLimit(key: string): LimitConfig | undefined {
    return this.learnedByKey.get(key);
  }

  learned(): IterableIterator<[string, LimitConfig]> {
    return this.learnedByKey.entries();
  }

  get needsIdentity(): boolean {
    return this.limits.some((l) => l.per === 'identity');
  }
}
