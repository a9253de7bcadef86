import { PatternIndex } from '../cdf/pattern.js';
import type { LimitConfig } from '../config/index.js';

const CACHE_MAX = 4096;

/**
 * Which configured limits apply to a request: every entry whose patterns and methods match; the
 * `fallback` entries only when nothing else did. Answers are memoised by method and path, since apps
 * repeat the same few paths.
 */
export class LimitTable {
  private readonly index: PatternIndex<LimitConfig>;
  private readonly memo = new Map<string, readonly LimitConfig[]>();

  constructor(readonly limits: readonly LimitConfig[]) {
    this.index = new PatternIndex(limits, (l) => l.match);
  }

  match(method: string, rest: string): readonly LimitConfig[] {
    const key = `${method} ${rest}`;
    let hit = this.memo.get(key);
    if (hit) return hit;
    const all = this.index.matchAll(rest).filter((l) => l.methods === null || l.methods.includes(method));
    const specific = all.filter((l) => !l.fallback);
    hit = specific.length > 0 ? specific : all;
    if (this.memo.size >= CACHE_MAX) this.memo.clear();
    this.memo.set(key, hit);
    return hit;
  }

  get needsIdentity(): boolean {
    return this.limits.some((l) => l.per === 'identity');
  }
}
