import { PatternIndex, type RouteInfo } from '../cdf/index.js';
import type { AdaptiveConfig, FigureOrigin, LimitConfig } from '../config/index.js';
import type { QuotaLimit } from './bucket.js';

const CACHE_MAX = 4096;
/** Learned buckets kept per identity are filed under their key with this suffix. */
export const IDENTITY_SUFFIX = ' @identity';

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

/** How far learning may take a figure of this origin: a documented or configured one is a ceiling. */
function maxOf(figure: number, origin: FigureOrigin, probeAbove: boolean, adaptive: AdaptiveConfig): number {
  return origin === 'guessed' || probeAbove ? figure * adaptive.maxRaise : figure;
}

/** A configured limit as the quota uses it: its ceilings derived from where its figures come from. */
export function quotaLimit(limit: LimitConfig, adaptive: AdaptiveConfig): QuotaLimit {
  if (limit.learned) return { ...limit, maxRate: limit.rate, maxConcurrency: limit.concurrency };
  const probeAbove = limit.probeAbove ?? adaptive.probeAbove;
  return {
    ...limit,
    maxRate: maxOf(limit.rate, limit.source.rate, probeAbove, adaptive),
    maxConcurrency: Math.round(maxOf(limit.concurrency, limit.source.concurrency, probeAbove, adaptive)),
  };
}

/**
 * Which limits apply to a request: every configured bucket whose patterns, methods and classes match (the
 * `fallback` ones only when nothing else did; a `perFamily` one as its own bucket per API family), plus the
 * learned buckets of its operation, its class and its API. Answers are memoised by method and path, since
 * apps repeat the same few paths; the memo is dropped when a bucket is learned.
 */
export class LimitTable {
  readonly limits: readonly QuotaLimit[];
  private readonly index: PatternIndex<QuotaLimit>;
  private readonly memo = new Map<string, readonly QuotaLimit[]>();
  /** Learned buckets by operation ("POST /assets/list"), class ("assets analytical") and API ("assets *"). */
  private readonly learnedByKey = new Map<string, QuotaLimit>();
  /** A `perFamily` limit's bucket for each family, by its name ("other.functions"). */
  private readonly perFamily = new Map<string, QuotaLimit>();

  constructor(limits: readonly LimitConfig[], adaptive: AdaptiveConfig) {
    this.limits = limits.map((l) => quotaLimit(l, adaptive));
    this.index = new PatternIndex(this.limits, (l) => l.match);
  }

  match(method: string, rest: string, route: RouteInfo): readonly QuotaLimit[] {
    const key = `${method} ${rest}`;
    let hit = this.memo.get(key);
    if (hit) return hit;
    const all = this.index
      .matchAll(rest)
      .filter((l) => (l.methods === null || l.methods.includes(method)) && coversClass(l, route.cls));
    const specific = all.filter((l) => !l.fallback);
    hit = (specific.length > 0 ? specific : all).map((l) => (l.perFamily ? this.ofFamily(l, route.family) : l));
    if (this.learnedByKey.size > 0) {
      const op = operationKey(method, route);
      const keys = op === null ? [apiKey(route), classKey(route)] : [apiKey(route), classKey(route), op];
      let more: QuotaLimit[] | null = null;
      for (const k of keys) {
        for (const l of [this.learnedByKey.get(k), this.learnedByKey.get(k + IDENTITY_SUFFIX)]) {
          if (l === undefined) continue;
          more ??= [...hit];
          more.push(l);
        }
      }
      if (more !== null) hit = more;
    }
    if (this.memo.size >= CACHE_MAX) this.memo.clear();
    this.memo.set(key, hit);
    return hit;
  }

  /** Adds (or replaces) a learned bucket under its key. */
  learn(key: string, limit: QuotaLimit): void {
    this.learnedByKey.set(key, limit);
    this.memo.clear();
  }

  /** Drops a learned bucket; true when there was one. */
  unlearn(key: string): boolean {
    if (!this.learnedByKey.delete(key)) return false;
    this.memo.clear();
    return true;
  }

  learnedLimit(key: string): QuotaLimit | undefined {
    return this.learnedByKey.get(key);
  }

  learned(): IterableIterator<[string, QuotaLimit]> {
    return this.learnedByKey.entries();
  }

  get learnedCount(): number {
    return this.learnedByKey.size;
  }

  /** The per-family buckets made so far (a reload keeps them, with their state). */
  familyLimits(): IterableIterator<QuotaLimit> {
    return this.perFamily.values();
  }

  /** Every limit buckets are made for now: configured, per family and learned. */
  all(): QuotaLimit[] {
    return [...this.limits, ...this.perFamily.values(), ...this.learnedByKey.values()];
  }

  /** The families another table made per-family buckets for: made here too, so their buckets survive a reload. */
  adoptFamilies(from: LimitTable): void {
    for (const l of from.familyLimits()) {
      const [base, family] = splitFamily(l.name);
      const mine = this.limits.find((x) => x.name === base && x.perFamily);
      if (mine && family) this.ofFamily(mine, family);
    }
  }

  get needsIdentity(): boolean {
    return this.limits.some((l) => l.per === 'identity');
  }

  private ofFamily(limit: QuotaLimit, family: string): QuotaLimit {
    const name = `${limit.name}.${family}`;
    let l = this.perFamily.get(name);
    if (l === undefined) {
      l = { ...limit, name, match: [`/${family}/**`], perFamily: false };
      this.perFamily.set(name, l);
    }
    return l;
  }
}

function splitFamily(name: string): [string, string | undefined] {
  const dot = name.lastIndexOf('.');
  return dot < 0 ? [name, undefined] : [name.slice(0, dot), name.slice(dot + 1)];
}
