import { performance } from 'node:perf_hooks';
import type { RouteInfo } from '../cdf/index.js';
import type { AdaptiveConfig, LearnedFigures, LimitConfig } from '../config/index.js';
import { SlidingCounter } from '../retry/window.js';
import { AdaptiveLimits, type LimitChange, statedLimit, type ThrottleKind, throttleKind } from './adaptive.js';
import type { Bucket } from './bucket.js';
import { apiKey, classKey, LimitTable, operationKey } from './limits.js';
import type { BucketPath } from './path.js';

type LearnedLevel = LearnedFigures['level'];

import type { Scheduler } from './scheduler.js';

/** Passed calls and unexplained 429s of one operation are counted over this window (the learned rate's basis). */
const OP_WINDOW_MS = 2000;
/** This many unexplained 429s on one operation (or class) within the window make a learned bucket. */
const MIN_UNEXPLAINED = 3;
/** ... when the operation has at least this share of its class's unexplained 429s (else the class learns). */
const CONCENTRATED = 0.6;
/** A bucket with less than this share of its burst left was near its rate limit. */
const NEAR_TOKENS = 0.25;
/** A bucket with at least this share of its slots taken was near its concurrency limit. */
const NEAR_SLOTS = 0.9;
/** A stated figure names a bucket whose figure is within this share of it. */
const SAME_FIGURE = 0.02;
/** A learned bucket at or under this share of a stated figure was already held under it. */
const SAME_FIGURE_HELD = 1.0;
/** Other operations of the API passing at least this share of a stated rate share its budget. */
const SIBLING_SHARE = 0.1;
/** A stated rate above this share of an operation's learned one names a wider budget, not the operation's. */
const WIDER = 0.8;
/** Learned buckets kept at most (there are 481 operations in CDF's description). */
const MAX_LEARNED = 512;

const PASSED = 0;
const UNEXPLAINED = 1;

/** What the tree reports as it learns, for logs and metrics. */
export interface TreeObserver {
  limitChanged(change: LimitChange): void;
  learned(limit: LimitConfig): void;
}

/** A learned bucket from elsewhere (another replica, through the store) or for the operator. */
export interface LearnedView {
  name: string;
  key: string;
  level: LearnedLevel;
  rate: number;
  concurrency: number;
  stated: boolean;
  /** The figures it may probe up to: its parents' configured ones. */
  ceilingRate: number;
  ceilingConcurrency: number;
}

/**
 * The quota's model: CDF's limits as a tree of buckets (an API level, CRUD and Analytical under it,
 * Aggregation under Analytical, each per project and per identity), written as configured buckets that all
 * apply when they match (LimitTable), plus the buckets learned from CDF's 429s for operations and classes
 * that have no bucket of their own. The one owner of bucket figures: the scheduler admits against them,
 * the store shares them, and everything else asks the tree.
 *
 * A 429 is charged to the narrowest budget that can explain it: the bucket whose figure CDF's message
 * states; else the narrowest of the levels that were near their limit; else, when the 429s concentrate on
 * one operation (or one class) that nothing on its path explains, a learned bucket for it, with the figure
 * CDF stated or the rate that got through, probed upwards like any adapted bucket. Parents are not cut for
 * a leaf's 429s, so one endpoint's limit does not slow the rest of its API.
 */
export class QuotaTree {
  private table: LimitTable;
  private readonly adaptive: AdaptiveLimits;
  private readonly ops = new WeakMap<RouteInfo, SlidingCounter>();
  /** Passed calls per API family, over the operation window (is an operation alone in its API?). */
  private readonly families = new Map<string, SlidingCounter>();
  /** Unexplained 429s by class key and by family, over the operation window. */
  private readonly unexplained = new Map<string, SlidingCounter>();
  /** Bumped whenever the learned buckets (or the table) change: bucket lists chosen before are stale. */
  private generationCount = 0;

  constructor(
    limits: readonly LimitConfig[],
    readonly scheduler: Scheduler,
    private readonly config: AdaptiveConfig,
    private readonly observer: TreeObserver | null = null,
  ) {
    this.table = new LimitTable(limits);
    this.adaptive = new AdaptiveLimits(config, (change) => this.apply(change));
    scheduler.store.onLearned?.((limit) => this.adopt(limit));
    if (config.enabled) scheduler.refresh = (path) => this.current(path);
  }

  /** The configured buckets (without the learned ones). */
  get limits(): readonly LimitConfig[] {
    return this.table.limits;
  }

  get needsIdentity(): boolean {
    return this.table.needsIdentity;
  }

  /** The buckets a request takes a token and a slot from: every level on its path, its scopes resolved. */
  bucketsFor(method: string, rest: string, route: RouteInfo, project: string, identity: () => string): Bucket[] {
    const limits = this.table.match(method, rest, route);
    const buckets = new Array<Bucket>(limits.length);
    let perIdentity: string | null = null;
    for (let i = 0; i < limits.length; i++) {
      const limit = limits[i];
      if (limit.per === 'identity') perIdentity ??= `${project}/${identity()}`;
      buckets[i] = this.scheduler.bucket(limit, limit.per === 'identity' ? (perIdentity as string) : project);
    }
    return buckets;
  }

  /** Changes whenever buckets are learned or dropped: a BucketPath chosen under another one is stale. */
  get generation(): number {
    return this.generationCount;
  }

  /**
   * A request's buckets as they are now: chosen again when a bucket was learned (or dropped) since. Retries and
   * queued calls of a 429 storm otherwise went out past the learned bucket their own 429s made. Nothing is kept
   * per request here (a WeakMap entry per request cost 10 % of a 1 KB call's CPU): the request holds its path.
   */
  current(path: BucketPath): readonly Bucket[] {
    if (path.bucketsChosenAt === this.generationCount) return path.buckets;
    path.bucketsChosenAt = this.generationCount;
    const target = path.target;
    if (target === null) return path.buckets;
    const all = this.bucketsFor(path.method, target.rest, path.route, target.project, () => path.identity);
    // Shadow buckets are never admitted against (the pipeline splits them off once, before the first attempt).
    path.buckets = all.some((b) => b.limit.mode === 'shadow') ? all.filter((b) => b.limit.mode !== 'shadow') : all;
    return path.buckets;
  }

  /** The learned buckets changed: bucket lists chosen before are stale, waiting calls take the new ones. */
  private changed(): void {
    this.generationCount++;
    this.scheduler.refreshWaiting();
  }

  /**
   * A new configured table (config reload). Buckets whose name survives keep their tokens, slots, queues
   * and adapted figures (under the new configured ones); learned buckets are kept, their ceilings following
   * the new table; buckets whose name is gone are forgotten once their calls finish.
   */
  reconfigure(limits: readonly LimitConfig[]): void {
    const next = new LimitTable(limits);
    for (const [key, limit] of this.table.learned()) next.learn(key, limit);
    this.table = next;
    this.scheduler.retarget([...limits, ...[...next.learned()].map(([, l]) => l)]);
    this.changed();
  }

  /** A call the buckets admitted got an answer that was not a 429. */
  passed(buckets: readonly Bucket[], route: RouteInfo, now: number): void {
    if (!this.config.enabled) return;
    this.adaptive.onSuccess(buckets, now);
    this.opCounter(route, now).add(PASSED, now);
    this.familyCounter(route.family, now).add(0, now);
  }

  /**
   * CDF answered 429 to a call the buckets admitted at `sentAt`: charged to the narrowest budget that
   * explains it (see the class comment).
   */
  throttled(
    buckets: readonly Bucket[],
    method: string,
    route: RouteInfo,
    message: string | null,
    now: number,
    sentAt = now,
  ): void {
    if (!this.config.enabled) return;
    const kind = throttleKind(message);
    const stated = statedLimit(message);
    const candidates = scoped(buckets, message);
    if (stated !== null) {
      const named = narrowest(
        candidates.filter((b) => Math.abs(figure(b.limit, kind) - stated) <= stated * SAME_FIGURE),
        kind,
      );
      if (named) {
        if (this.sharedWithSiblings(named, route, kind, stated, now, sentAt)) {
          this.promote(named, method, route, candidates, kind, stated, now, sentAt);
          return;
        }
        // A learned bucket already at or under the figure CDF states: CDF's bucket is in debt (throttled
        // calls charged) rather than lower. Follow its tokens down; cutting as well would stretch the recovery
        // for nothing (measured: an operation at 4.3/s for 10 s after the first storm; an API's learned 50/s
        // cut to 12/s within 2 ms by the 429s of calls sent before it was learned).
        if (named.limit.learned !== undefined && figure(named.limit, kind) <= stated) {
          this.adaptive.follow(named, now);
          return;
        }
        this.adaptive.charge(named, kind, stated, now, sentAt);
        return;
      }
      // The call was sent before its lease had the learned bucket with that figure (learned meanwhile from the
      // same storm): that bucket takes it, and nothing else is learned.
      const since = this.learnedWithFigure(method, route, candidates, kind, stated);
      if (since) {
        if (figure(since.limit, kind) <= stated) this.adaptive.follow(since, now);
        else this.adaptive.charge(since, kind, stated, now, sentAt);
        return;
      }
      const least = candidates.reduce(
        (m, b) => (b.limit.learned ? m : Math.min(m, figure(b.limit, kind))),
        Number.POSITIVE_INFINITY,
      );
      // Tighter than every configured budget on the path: one the gateway does not know. Learn it for the
      // operation; when another operation of the API learned the same figure, the budget is theirs together.
      if (stated < least) {
        this.learnStated(method, route, candidates, kind, stated, now, sentAt);
        return;
      }
      // CDF names a looser budget than ours: other consumers share it. Charge the tightest, as before.
      const tightest = narrowest(
        candidates.filter((b) => figure(b.limit, kind) <= stated),
        kind,
      );
      if (tightest) {
        this.adaptive.charge(tightest, kind, stated, now, sentAt);
        return;
      }
      return;
    }
    // A budget whose figure CDF states would have named it: a rate 429 naming none is not that budget's.
    const silent = kind === 'rate' ? candidates.filter((b) => b.limit.learned?.statedRate === undefined) : candidates;
    const near = silent.filter((b) => isNear(b, kind, now));
    const chosen = narrowest(near, kind) ?? learnedOf(silent);
    const f = chosen?.limit.learned;
    if (chosen && f && kind === 'rate' && f.statedRate === undefined && f.rate >= chosen.limit.rate) {
      // A bucket learned for its concurrency, at its parents' rate: its own rate is what gets through, not a
      // cut from the parents' (halving 170/s towards a 10/s endpoint took a 429 storm per halving).
      this.learn(f.key, f.level, method, route, candidates, kind, null, now, sentAt);
      return;
    }
    if (chosen) {
      this.adaptive.charge(chosen, kind, null, now, sentAt, this.gotThrough(chosen, route, now));
      return;
    }
    this.unexplainedFor(method, route, candidates, kind, now, sentAt);
  }

  /** For an operation's learned bucket, the rate its calls got through at over the window (CDF's verdict). */
  private gotThrough(bucket: Bucket, route: RouteInfo, now: number): number | undefined {
    if (bucket.limit.learned?.level !== 'operation') return undefined;
    return this.opCounter(route, now).sum(PASSED, now) / (OP_WINDOW_MS / 1000);
  }

  /** The bucket, in the throttled call's project, of a learned budget on its path whose figure is `stated`. */
  private learnedWithFigure(
    method: string,
    route: RouteInfo,
    candidates: readonly Bucket[],
    kind: ThrottleKind,
    stated: number,
  ): Bucket | undefined {
    const scope = candidates.find((b) => b.limit.per === 'project')?.scope;
    if (scope === undefined) return undefined;
    const keys = [operationKey(method, route), classKey(route), apiKey(route)];
    for (const key of keys) {
      const l = key === null ? undefined : this.table.learnedLimit(key);
      if (l && Math.abs(figure(l, kind) - stated) <= stated * SAME_FIGURE) return this.scheduler.bucket(l, scope);
    }
    return undefined;
  }

  /** Learned buckets, for metrics, the dashboard and the store. */
  learned(): LearnedView[] {
    const out: LearnedView[] = [];
    for (const [, l] of this.table.learned()) {
      const f = l.learned!;
      out.push({
        name: l.name,
        key: f.key,
        level: f.level,
        rate: f.rate,
        concurrency: f.concurrency,
        stated: f.stated,
        ceilingRate: l.rate,
        ceilingConcurrency: l.concurrency,
      });
    }
    return out;
  }

  /**
   * A learned bucket from another replica (through the store): the same name, so the same shared bucket.
   * Its effective figures then follow the store like any bucket's; here it only has to exist.
   */
  adopt(limit: LimitConfig): void {
    const f = limit.learned;
    if (!f || !this.config.enabled) return;
    if (this.table.learnedLimit(f.key)) return;
    if (this.countLearned() >= MAX_LEARNED) return;
    const local: LimitConfig = { ...limit, learned: { ...f, at: performance.now() } };
    this.table.learn(f.key, local);
    this.scheduler.retarget([local], true);
    this.changed();
    this.observer?.learned(local);
  }

  private apply(change: LimitChange): void {
    const b = change.bucket;
    b.setEffective(change.rate, change.concurrency);
    // What a learned bucket has learned follows its buckets, so new scopes start there.
    const f = b.limit.learned;
    if (f) {
      f.rate = change.rate;
      f.concurrency = change.concurrency;
    }
    this.scheduler.limitsChanged(b);
    this.observer?.limitChanged(change);
  }

  private familyCounter(family: string, now: number): SlidingCounter {
    let c = this.families.get(family);
    if (c === undefined) {
      if (this.families.size >= 256) this.families.clear();
      c = new SlidingCounter(OP_WINDOW_MS, 1);
      c.add(0, now, 0);
      this.families.set(family, c);
    }
    return c;
  }

  private opCounter(route: RouteInfo, now: number): SlidingCounter {
    let c = this.ops.get(route);
    if (c === undefined) {
      c = new SlidingCounter(OP_WINDOW_MS, 2);
      c.add(PASSED, now, 0);
      this.ops.set(route, c);
    }
    return c;
  }

  private tally(key: string, now: number): number {
    let c = this.unexplained.get(key);
    if (c === undefined) {
      if (this.unexplained.size >= 1024) this.unexplained.clear();
      c = new SlidingCounter(OP_WINDOW_MS, 1);
      this.unexplained.set(key, c);
    }
    c.add(0, now);
    return c.sum(0, now);
  }

  /** A 429 without a figure that no level near its limit explains: tallied until it concentrates. */
  private unexplainedFor(
    method: string,
    route: RouteInfo,
    candidates: readonly Bucket[],
    kind: ThrottleKind,
    now: number,
    sentAt: number,
  ): void {
    const op = this.opCounter(route, now);
    op.add(UNEXPLAINED, now);
    const onOp = op.sum(UNEXPLAINED, now);
    const onClass = this.tally(classKey(route), now);
    const onFamily = this.tally(route.family, now);
    if (onFamily >= MIN_UNEXPLAINED && onClass < onFamily * CONCENTRATED) {
      // Spread over the API's classes: the API's own budget is lower than configured. Cut the API level.
      const api = widest(candidates, kind);
      if (api) this.adaptive.charge(api, kind, null, now, sentAt);
      return;
    }
    if (onOp >= MIN_UNEXPLAINED && operationKey(method, route) !== null && onOp >= onClass * CONCENTRATED) {
      this.learnFor(method, route, candidates, kind, null, now, sentAt);
      return;
    }
    if (onClass >= MIN_UNEXPLAINED && route.cls !== 'other')
      this.learn(classKey(route), 'class', method, route, candidates, kind, null, now, sentAt);
  }

  /**
   * Whether an operation's learned bucket, already held under the figure CDF states, met that figure again
   * while other operations of its API were getting calls through: then the budget is theirs together (an
   * API-level one), and cutting the operation would only hand its share to the others.
   */
  private sharedWithSiblings(
    named: Bucket,
    route: RouteInfo,
    kind: ThrottleKind,
    stated: number,
    now: number,
    sentAt: number,
  ): boolean {
    const f = named.limit.learned;
    if (f?.level !== 'operation' || kind !== 'rate' || sentAt <= f.at) return false;
    if (named.rate > stated * SAME_FIGURE_HELD) return false;
    const family = this.familyCounter(route.family, now).sum(0, now);
    const own = this.opCounter(route, now).sum(PASSED, now);
    return family - own >= stated * SIBLING_SHARE * (OP_WINDOW_MS / 1000);
  }

  /** Replaces the operation buckets that learned `stated` in an API by one learned bucket for the API. */
  private promote(
    named: Bucket,
    method: string,
    route: RouteInfo,
    candidates: readonly Bucket[],
    kind: ThrottleKind,
    stated: number,
    now: number,
    sentAt: number,
  ): void {
    for (const [key, l] of [...this.table.learned()]) {
      const f = l.learned!;
      if (f.family === route.family && f.level !== 'api' && Math.abs(figure(l, kind) - stated) <= stated * SAME_FIGURE)
        this.table.unlearn(key);
    }
    const rest = candidates.filter((b) => b !== named);
    this.learn(apiKey(route), 'api', method, route, rest, kind, stated, now, sentAt);
  }

  /**
   * A stated figure no bucket on the path has. The narrowest budget that explains it is the operation's,
   * unless operations of the same API already learned the same figure: then it is one budget over them,
   * their class's when they share it, else the API's, and their operation buckets give way to it.
   */
  private learnStated(
    method: string,
    route: RouteInfo,
    candidates: readonly Bucket[],
    kind: ThrottleKind,
    stated: number,
    now: number,
    sentAt: number,
  ): void {
    const op = operationKey(method, route);
    const mine = op === null ? undefined : this.table.learnedLimit(op);
    if (mine && kind === 'rate' && figure(mine, kind) < stated * WIDER) {
      // The operation already learned a clearly lower rate: this figure is a wider budget it shares with others.
      const rest = candidates.filter((b) => b.limit !== mine);
      this.learn(apiKey(route), 'api', method, route, rest, kind, stated, now, sentAt);
      return;
    }
    const same: Array<[string, LimitConfig]> = [];
    for (const [key, l] of this.table.learned()) {
      const f = l.learned!;
      if (key === op || f.family !== route.family || f.level === 'api') continue;
      if (Math.abs(figure(l, kind) - stated) <= stated * SAME_FIGURE) same.push([key, l]);
    }
    if (same.length === 0) {
      this.learnFor(method, route, candidates, kind, stated, now, sentAt);
      return;
    }
    const sameClass = same.every(([, l]) => l.learned!.cls === route.cls) && route.cls !== 'other';
    for (const [key] of same) this.table.unlearn(key);
    const own = op === null ? undefined : this.table.learnedLimit(op);
    if (own && Math.abs(figure(own, kind) - stated) <= stated * SAME_FIGURE) this.table.unlearn(op!);
    if (sameClass) this.learn(classKey(route), 'class', method, route, candidates, kind, stated, now, sentAt);
    else this.learn(apiKey(route), 'api', method, route, candidates, kind, stated, now, sentAt);
  }

  private learnFor(
    method: string,
    route: RouteInfo,
    candidates: readonly Bucket[],
    kind: ThrottleKind,
    stated: number | null,
    now: number,
    sentAt: number,
  ): void {
    const op = operationKey(method, route);
    if (op !== null) this.learn(op, 'operation', method, route, candidates, kind, stated, now, sentAt);
    else if (route.cls !== 'other')
      this.learn(classKey(route), 'class', method, route, candidates, kind, stated, now, sentAt);
    else {
      const tightest = narrowest(candidates, kind);
      if (tightest) this.adaptive.charge(tightest, kind, stated, now, sentAt);
    }
  }

  /** Makes (or lowers) the learned bucket for `key` and charges the 429 to it. */
  private learn(
    key: string,
    level: LearnedLevel,
    method: string,
    route: RouteInfo,
    candidates: readonly Bucket[],
    kind: ThrottleKind,
    stated: number | null,
    now: number,
    sentAt: number,
  ): void {
    const existing = this.table.learnedLimit(key);
    const f0 = existing?.learned;
    if (!existing && this.countLearned() >= MAX_LEARNED) return;
    let ceilingRate = Number.POSITIVE_INFINITY;
    let ceilingConcurrency = Number.POSITIVE_INFINITY;
    for (const b of candidates) {
      if (b.limit.learned) continue;
      ceilingRate = Math.min(ceilingRate, b.limit.rate);
      ceilingConcurrency = Math.min(ceilingConcurrency, b.limit.concurrency);
    }
    if (!Number.isFinite(ceilingRate)) {
      ceilingRate = existing?.rate ?? 100;
      ceilingConcurrency = existing?.concurrency ?? 10;
    }
    let rate = existing?.learned?.rate ?? Math.min(ceilingRate, effectiveMin(candidates, 'rate'));
    let concurrency =
      existing?.learned?.concurrency ?? Math.min(ceilingConcurrency, effectiveMin(candidates, 'concurrency'));
    if (kind === 'rate') {
      if (stated !== null) rate = Math.min(rate, stated);
      else {
        // What got through over the window is what the hidden budget gave: start there, probe upwards.
        const got = this.opCounter(route, now).sum(PASSED, now) / (OP_WINDOW_MS / 1000);
        rate = Math.min(rate, Math.max(ceilingRate * this.config.floor, got));
      }
    } else if (stated !== null) concurrency = Math.max(1, Math.min(concurrency, Math.floor(stated)));
    else concurrency = Math.max(1, Math.floor(concurrency * 0.75));
    const limit: LimitConfig = {
      name: learnedName(key),
      match: level === 'operation' ? [route.template!.replace(/\{[^}]*\}/g, '*')] : [`/${route.family}/**`],
      classes: level === 'class' ? [route.cls] : null,
      methods: level === 'operation' ? [method] : null,
      per: 'project',
      rate: ceilingRate,
      burst: Math.max(1, ceilingRate),
      concurrency: ceilingConcurrency,
      fallback: false,
      learned: {
        key,
        level,
        family: route.family,
        cls: route.cls,
        rate,
        concurrency,
        stated: stated !== null,
        statedRate: kind === 'rate' && stated !== null ? Math.min(stated, f0?.statedRate ?? stated) : f0?.statedRate,
        statedConcurrency:
          kind === 'concurrency' && stated !== null
            ? Math.min(Math.floor(stated), f0?.statedConcurrency ?? stated)
            : f0?.statedConcurrency,
        at: existing?.learned?.at ?? now,
      },
    };
    this.table.learn(key, limit);
    // Buckets of this learned limit made before (for other scopes) follow the new figures.
    this.scheduler.retarget([limit], true);
    this.observer?.learned(limit);
    this.scheduler.store.publishLearned?.(limit);
    // The bucket of the throttled call's project takes the 429 as any bucket would (tokens follow CDF's down).
    const scope = candidates.find((b) => b.limit.per === 'project')?.scope;
    if (scope === undefined) {
      this.changed();
      return;
    }
    const leaf = this.scheduler.bucket(limit, scope);
    // Already at or under the figure CDF states (a 429 to a call sent before this lease had the bucket): CDF
    // is in debt, not lower; follow it, as for a 429 charged to the bucket by name.
    // A stated concurrency is exact (CDF frees a slot before its answer reaches us, so ours are never fewer):
    // learned at it, the bucket follows; a cut would only waste a slot.
    if (stated !== null && kind === 'rate' && !(existing && f0 && f0.rate <= stated))
      this.adaptive.charge(leaf, kind, stated, now, sentAt);
    else this.adaptive.follow(leaf, now);
    // A new learned bucket starts in debt (a second of its figure), as CDF's is after the 429s that taught it
    // (throttled calls are charged): probing while CDF's bucket refills only keeps it empty.
    if (!existing) leaf.cap(-leaf.burst);
    this.changed();
  }

  private countLearned(): number {
    let n = 0;
    for (const _ of this.table.learned()) n++;
    return n;
  }
}

/** "learned.post.assets.aggregate", "learned.assets.analytical": a bucket name from a learned key. */
export function learnedName(key: string): string {
  return `learned.${key
    .toLowerCase()
    .replace(/\{[^}]*\}/g, '_')
    .replace(/[^a-z0-9_-]+/g, '.')
    .replace(/^\.+|\.+$/g, '')}`;
}

/** The buckets of the scope CDF's message names (Project or Identity), else all. */
function scoped(buckets: readonly Bucket[], message: string | null): readonly Bucket[] {
  if (message === null) return buckets;
  const per = /\bidentity\b/i.test(message) ? 'identity' : /\bproject\b/i.test(message) ? 'project' : null;
  if (per === null) return buckets;
  // Learned buckets are per project but stand for budgets CDF may keep per identity too.
  const out = buckets.filter((b) => b.limit.per === per || b.limit.learned !== undefined);
  return out.length > 0 ? out : buckets;
}

/** The figure of a limit for a kind of 429: configured, or learned. */
function figure(limit: LimitConfig, kind: ThrottleKind): number {
  const f = limit.learned;
  if (f) return kind === 'rate' ? f.rate : f.concurrency;
  return kind === 'rate' ? limit.rate : limit.concurrency;
}

/** The lowest effective figure of the configured buckets (learned leaves say nothing about a wider budget). */
function effectiveMin(buckets: readonly Bucket[], kind: ThrottleKind): number {
  let m = Number.POSITIVE_INFINITY;
  for (const b of buckets) if (!b.limit.learned) m = Math.min(m, kind === 'rate' ? b.rate : b.concurrency);
  return m;
}

/** How deep in the tree a bucket sits: learned leaves, exact paths, aggregation, classes, the API level. */
export function depthOf(limit: LimitConfig): number {
  // A learned API budget is as wide as the API level (just inside it); learned classes and operations are leaves.
  if (limit.learned) return limit.learned.level === 'operation' ? 5 : limit.learned.level === 'class' ? 4 : 0.5;
  let d = 0;
  if (limit.classes !== null && limit.classes !== undefined)
    d += limit.classes.length === 1 && limit.classes[0] === 'aggregate' ? 2 : 1;
  if (limit.match.every((p) => !p.includes('*'))) d += 3;
  else if (limit.match.every((p) => !p.includes('**'))) d += 1;
  if (limit.fallback) d = -1;
  return d;
}

/** The deepest bucket, the tightest of equals; undefined for none. */
function narrowest(buckets: readonly Bucket[], kind: ThrottleKind): Bucket | undefined {
  let best: Bucket | undefined;
  let bestDepth = Number.NEGATIVE_INFINITY;
  for (const b of buckets) {
    const d = depthOf(b.limit);
    if (d > bestDepth || (d === bestDepth && best && tighter(b, best, kind))) {
      best = b;
      bestDepth = d;
    }
  }
  return best;
}

/** The shallowest configured bucket (the API level), the tightest of equals. */
function widest(buckets: readonly Bucket[], kind: ThrottleKind): Bucket | undefined {
  let best: Bucket | undefined;
  let bestDepth = Number.POSITIVE_INFINITY;
  for (const b of buckets) {
    if (b.limit.learned) continue;
    const d = depthOf(b.limit);
    if (d < bestDepth || (d === bestDepth && best && tighter(b, best, kind))) {
      best = b;
      bestDepth = d;
    }
  }
  return best;
}

function tighter(a: Bucket, b: Bucket, kind: ThrottleKind): boolean {
  return kind === 'rate' ? a.rate < b.rate : a.concurrency < b.concurrency;
}

/** The learned bucket on the path, if any: it stands for the budget that threw the earlier 429s. */
function learnedOf(buckets: readonly Bucket[]): Bucket | undefined {
  let best: Bucket | undefined;
  for (const b of buckets) if (b.limit.learned && (!best || depthOf(b.limit) > depthOf(best.limit))) best = b;
  return best;
}

/** Whether a bucket was at (or close to) its limit of this kind: then it explains a 429 of that kind. */
function isNear(b: Bucket, kind: ThrottleKind, now: number): boolean {
  if (kind === 'concurrency') return b.inFlight >= Math.max(1, b.concurrency * NEAR_SLOTS);
  const elapsed = now - b.refilledAt;
  const tokens = elapsed > 0 ? Math.min(b.burst, b.tokens + (elapsed * b.rate) / 1000) : b.tokens;
  return tokens < b.burst * NEAR_TOKENS;
}
