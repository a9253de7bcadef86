import type { RouteInfo } from '../cdf/index.js';
import type { AdaptiveConfig, LearnedFigures, LimitConfig, Provenance } from '../config/index.js';
import { AdaptiveLimits, type LimitChange } from './adaptive.js';
import { type Attribution, attribute, type Candidate, type LearnedBudget, type Level } from './attribution.js';
import type { Bucket, QuotaLimit } from './bucket.js';
import { readHint, type ThrottleHint, type ThrottleKind } from './hint.js';
import { apiKey, classKey, IDENTITY_SUFFIX, LimitTable, operationKey } from './limits.js';
import type { BucketPath } from './path.js';
import type { Scheduler } from './scheduler.js';
import { type OperationCount, ThrottleTally } from './tally.js';

/** A bucket with less than this share of its burst left was near its rate limit. */
const NEAR_TOKENS = 0.25;
/** A bucket with at least this share of its slots taken was near its concurrency limit. */
const NEAR_SLOTS = 0.9;
/** Learned buckets kept at most (there are 481 operations in CDF's description). */
const MAX_LEARNED = 512;
/** A learned bucket back at its ceiling this long after CDF last refused it limits nothing: it is undone. */
const RETIRE_MS = 5 * 60_000;
/** A stated figure names a learned budget whose figure is within this share of it. */
const SAME_FIGURE = 0.02;

/** What the tree reports as it learns, for logs and metrics. */
export interface TreeObserver {
  limitChanged(change: LimitChange): void;
  learned(limit: LimitConfig): void;
}

/** A learned bucket, for metrics, the dashboard and the operator. */
export interface LearnedView {
  name: string;
  key: string;
  level: Level;
  per: 'project' | 'identity';
  rate: number;
  concurrency: number;
  stated: boolean;
  rateSource: Provenance;
  concurrencySource: Provenance;
  /** The figures it may climb to: its parents' ceilings. */
  ceilingRate: number;
  ceilingConcurrency: number;
}

/**
 * The quota's model: CDF's limits as a tree of buckets (an API level, CRUD and Analytical under it,
 * Aggregation under Analytical, each per project and per identity), written as configured buckets that all
 * apply when they match (LimitTable), plus the buckets learned from CDF's 429s for operations and classes
 * that have no bucket of their own. The one owner of bucket figures: the scheduler admits against them, the
 * store shares them, and everything else asks the tree. A 429 is charged to the narrowest level its own
 * traffic explains (attribution.ts); each bucket's estimators (adaptive.ts) move its figures.
 */
export class QuotaTree {
  private table: LimitTable;
  private readonly adaptive: AdaptiveLimits;
  private readonly tally = new ThrottleTally();
  /** Bumped whenever the learned buckets (or the table) change: bucket lists chosen before are stale. */
  private generationCount = 0;

  constructor(
    limits: readonly LimitConfig[],
    readonly scheduler: Scheduler,
    /** The live section: a reload that turns learning on or off takes effect on the next answer. */
    private readonly config: AdaptiveConfig,
    private readonly observer: TreeObserver | null = null,
  ) {
    this.table = new LimitTable(limits, config);
    this.adaptive = new AdaptiveLimits(
      config,
      (b, now) => scheduler.demandOf(b, now),
      (change, rateSource, concurrencySource) => this.apply(change, rateSource, concurrencySource),
    );
    scheduler.store.onLearned?.(
      (limit) => this.adopt(limit),
      (key) => this.withdrawn(key),
    );
    scheduler.refresh = (path) => this.current(path);
  }

  /** The configured buckets (without the per-family and learned ones). */
  get limits(): readonly QuotaLimit[] {
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
   * A request's buckets as they are now: chosen again when a bucket was learned (or dropped) since. Nothing is
   * kept per request here: the request holds its path.
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

  /**
   * A new configured table (config reload). Buckets whose name survives keep their tokens, slots, queues and
   * learned figures (under the new ceilings); learned buckets are kept while learning is on; buckets whose
   * name is gone are forgotten once their calls finish.
   */
  reconfigure(limits: readonly LimitConfig[]): void {
    const next = new LimitTable(limits, this.config);
    next.adoptFamilies(this.table);
    if (this.config.enabled) for (const [key, limit] of this.table.learned()) next.learn(key, limit);
    this.table = next;
    this.scheduler.retarget(next.all());
    if (!this.config.enabled) for (const b of this.scheduler.allBuckets()) this.restart(b);
    this.changed();
  }

  /** A call the buckets admitted at `sentAt` got an answer that was not a 429. */
  passed(buckets: readonly Bucket[], route: RouteInfo, now: number, sentAt = now): void {
    if (!this.config.enabled) return;
    this.tally.passed(projectOf(buckets), route, now);
    for (let i = 0; i < buckets.length; i++) {
      const b = buckets[i];
      this.adaptive.passed(b, now, sentAt);
      const f = b.limit.learned;
      if (f !== undefined && now - f.throttledAt > RETIRE_MS && b.rate >= b.limit.maxRate) this.retire(f.key, b.limit);
    }
  }

  /**
   * CDF answered 429 to a call the buckets admitted at `sentAt`. `message`: CDF's error message, or the
   * answer's text when it was not CDF's JSON, or null when it was not read.
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
    const hint = readHint(message);
    const project = projectOf(buckets);
    this.tally.throttled(project, route, now);
    const scoped = inScope(buckets, hint.scope);
    const operations = this.tally.operations(project, route, now);
    const decision = attribute({
      kind: hint.kind,
      stated: hint.stated,
      cls: route.cls,
      hasOperation: route.template !== null,
      candidates: scoped.map((b) => candidateOf(b, hint, now, sentAt)),
      learned: this.learnedBudgets(method, route, hint.kind),
      operations,
      siblingsPerSecond: operations.slice(1).reduce((n, o) => n + o.passedPerSecond, 0),
      tallyAgeMs: this.tally.age(project, route, now),
    });
    this.carryOut(decision, { buckets, scoped, method, route, hint, now, sentAt, operations, project });
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
        per: f.per,
        rate: f.rate,
        concurrency: f.concurrency,
        stated: f.stated,
        rateSource: f.rateSource,
        concurrencySource: f.concurrencySource,
        ceilingRate: l.maxRate,
        ceilingConcurrency: l.maxConcurrency,
      });
    }
    return out;
  }

  /**
   * A learned bucket from another replica (through the store): the same name, so the same shared bucket. Its
   * effective figures then follow the store like any bucket's; here it only has to exist.
   */
  adopt(limit: LimitConfig): void {
    const f = limit.learned;
    if (!f || !this.config.enabled || this.table.learnedLimit(f.key)) return;
    if (this.table.learnedCount >= MAX_LEARNED) return;
    const local: QuotaLimit = {
      ...limit,
      maxRate: limit.rate,
      maxConcurrency: limit.concurrency,
      learned: { ...f, at: this.scheduler.clock.now(), throttledAt: this.scheduler.clock.now() },
    };
    this.table.learn(f.key, local);
    this.scheduler.retarget([local], true);
    this.changed();
    this.observer?.learned(local);
  }

  /** Another replica undid a learned bucket: this one drops it too. */
  withdrawn(key: string): void {
    const l = this.table.learnedLimit(key);
    if (l === undefined || !this.table.unlearn(key)) return;
    this.scheduler.forget(l.name);
    this.changed();
  }

  private carryOut(decision: Attribution, c: Throttle): void {
    const { hint, now } = c;
    switch (decision.action) {
      case 'cut':
        this.charge(c.scoped[decision.index], c);
        return;
      case 'follow':
        this.adaptive.follow(c.scoped[decision.index], now);
        return;
      case 'learn':
        this.learn(decision.level, c);
        return;
      case 'merge':
        // The operations' learned buckets with this figure give way to one budget over them.
        for (const [key, l] of [...this.table.learned()]) {
          const f = l.learned!;
          if (f.family === c.route.family && f.level !== 'api' && hint.stated !== null)
            if (Math.abs(figureOf(l, hint.kind) - hint.stated) <= hint.stated * SAME_FIGURE) this.unlearn(key, l);
        }
        this.learn(decision.level, c);
        return;
      case 'none':
        return;
    }
  }

  /** The 429 charged to a bucket on the call's path. */
  private charge(bucket: Bucket, c: Throttle): void {
    const f = bucket.limit.learned;
    if (f !== undefined) f.throttledAt = c.now;
    const own = c.operations[0];
    const share = own === undefined ? 0 : own.throttled / Math.max(1, own.calls);
    this.adaptive.charge(bucket, c.hint.kind, c.hint.stated, c.now, c.sentAt, share);
  }

  /** Makes (or charges) the learned bucket of `level` for the call, in the scope CDF's message named. */
  private learn(level: Level, c: Throttle): void {
    const { method, route, hint, now } = c;
    const per = hint.scope === 'identity' ? 'identity' : 'project';
    const key = learnedKey(level, method, route, per);
    const existing = this.table.learnedLimit(key);
    if (existing) {
      const bucket = this.bucketOf(existing, c);
      if (bucket === undefined) return;
      if (hint.stated !== null && figureOf(existing, hint.kind) <= hint.stated) this.adaptive.follow(bucket, now);
      else this.charge(bucket, c);
      return;
    }
    if (this.table.learnedCount >= MAX_LEARNED) return;
    const limit = this.learnedLimit(key, level, per, c);
    this.table.learn(key, limit);
    // Buckets of this learned limit made before (for other scopes) follow the new figures.
    this.scheduler.retarget([limit], true);
    this.observer?.learned(limit);
    this.scheduler.store.publishLearned?.(limit);
    const bucket = this.bucketOf(limit, c);
    if (bucket !== undefined) {
      // A rate estimated from what got through during a storm is low: CDF refused the parents' rate, so the
      // climb aims halfway between.
      const estimated = hint.kind === 'rate' && hint.stated === null;
      this.adaptive.watch(bucket, estimated ? (limit.learned!.rate + parentRate(c.buckets)) / 2 : undefined);
      if (hint.stated !== null && hint.kind === 'rate')
        this.adaptive.charge(bucket, 'rate', hint.stated, now, c.sentAt);
      else this.adaptive.follow(bucket, now);
      // A rate learned starts in debt, as CDF's bucket is after the 429s that taught it (throttled calls are
      // charged); a bucket learned for its concurrency still runs at its parents' rate.
      if (hint.kind === 'rate') bucket.cap(-bucket.burst);
    }
    this.changed();
  }

  private learnedLimit(key: string, level: Level, per: 'project' | 'identity', c: Throttle): QuotaLimit {
    const { route, method, hint, now } = c;
    let maxRate = Number.POSITIVE_INFINITY;
    let maxConcurrency = Number.POSITIVE_INFINITY;
    let rate = Number.POSITIVE_INFINITY;
    let concurrency = Number.POSITIVE_INFINITY;
    let rateSource: Provenance = 'guessed';
    let concurrencySource: Provenance = 'guessed';
    for (const b of c.buckets) {
      if (b.limit.learned) continue;
      maxRate = Math.min(maxRate, b.limit.maxRate);
      maxConcurrency = Math.min(maxConcurrency, b.limit.maxConcurrency);
      if (b.rate < rate) [rate, rateSource] = [b.rate, b.rateSource];
      if (b.concurrency < concurrency) [concurrency, concurrencySource] = [b.concurrency, b.concurrencySource];
    }
    if (!Number.isFinite(maxRate)) [maxRate, maxConcurrency, rate, concurrency] = [100, 10, 100, 10];
    if (hint.kind === 'rate') {
      if (hint.stated !== null) [rate, rateSource] = [Math.min(rate, hint.stated), 'stated'];
      else
        [rate, rateSource] = [
          Math.min(rate, Math.max(maxRate * this.config.floor, passedRate(c.operations, level, route))),
          'learned',
        ];
    } else if (hint.stated !== null)
      [concurrency, concurrencySource] = [Math.max(1, Math.min(concurrency, Math.floor(hint.stated))), 'stated'];
    else [concurrency, concurrencySource] = [Math.max(1, Math.floor(concurrency * 0.75)), 'learned'];
    const learned: LearnedFigures = {
      key,
      level,
      family: route.family,
      cls: route.cls,
      rate,
      concurrency,
      stated: hint.stated !== null,
      rateSource,
      concurrencySource,
      per,
      statedRate: hint.kind === 'rate' && hint.stated !== null ? hint.stated : undefined,
      statedConcurrency: hint.kind === 'concurrency' && hint.stated !== null ? Math.floor(hint.stated) : undefined,
      at: now,
      throttledAt: now,
    };
    return {
      name: learnedName(key),
      match: level === 'operation' ? [route.template!.replace(/\{[^}]*\}/g, '*')] : [`/${route.family}/**`],
      classes: level === 'class' ? [route.cls] : null,
      methods: level === 'operation' ? [method] : null,
      per,
      rate: maxRate,
      burst: Math.max(1, maxRate),
      concurrency: maxConcurrency,
      fallback: false,
      mode: 'enforce',
      source: { rate: 'guessed', concurrency: 'guessed' },
      probeAbove: null,
      perFamily: false,
      maxRate,
      maxConcurrency,
      learned,
    };
  }

  /** The bucket of a learned limit in the throttled call's project (or project and identity). */
  private bucketOf(limit: QuotaLimit, c: Throttle): Bucket | undefined {
    if (limit.per === 'project') return this.scheduler.bucket(limit, c.project);
    const scope = c.buckets.find((b) => b.limit.per === 'identity')?.scope;
    return scope === undefined ? undefined : this.scheduler.bucket(limit, scope);
  }

  /** The API's learned budgets, as attribution sees them. */
  private learnedBudgets(method: string, route: RouteInfo, kind: ThrottleKind): LearnedBudget[] {
    if (this.table.learnedCount === 0) return [];
    const op = operationKey(method, route);
    const mine = new Set([op, classKey(route), apiKey(route)]);
    const out: LearnedBudget[] = [];
    for (const [, l] of this.table.learned()) {
      const f = l.learned!;
      if (f.family !== route.family) continue;
      const base = baseKey(f.key);
      out.push({ level: f.level, cls: f.cls, figure: figureOf(l, kind), covers: mine.has(base), own: base === op });
    }
    return out;
  }

  /** Undoes a learned bucket here and for the replicas that share the store. */
  private unlearn(key: string, limit: QuotaLimit): void {
    if (!this.table.unlearn(key)) return;
    this.scheduler.forget(limit.name);
    this.scheduler.store.withdrawLearned?.(key);
  }

  /** A learned bucket back at its ceiling long after its last 429: it limits nothing any more. */
  private retire(key: string, limit: QuotaLimit): void {
    this.unlearn(key, limit);
    this.changed();
  }

  /** Learning turned off: the bucket runs at its starting figures again. */
  private restart(b: Bucket): void {
    this.adaptive.forget(b);
    const l = b.limit;
    if (b.rate !== l.rate || b.concurrency !== l.concurrency)
      b.setEffective(l.rate, l.concurrency, l.source.rate, l.source.concurrency);
    this.scheduler.limitsChanged(b);
  }

  private apply(change: LimitChange, rateSource: Provenance, concurrencySource: Provenance): void {
    const b = change.bucket;
    b.setEffective(change.rate, change.concurrency, rateSource, concurrencySource);
    // What a learned bucket has learned follows its buckets, so new scopes start there.
    const f = b.limit.learned;
    if (f) {
      f.rate = change.rate;
      f.concurrency = change.concurrency;
      f.rateSource = rateSource;
      f.concurrencySource = concurrencySource;
    }
    this.scheduler.limitsChanged(b);
    this.observer?.limitChanged(change);
  }

  /** The learned buckets changed: bucket lists chosen before are stale, waiting calls take the new ones. */
  private changed(): void {
    this.generationCount++;
    this.scheduler.refreshWaiting();
  }
}

/** What carrying out a decision needs to know of the 429. */
interface Throttle {
  readonly buckets: readonly Bucket[];
  readonly scoped: readonly Bucket[];
  readonly method: string;
  readonly route: RouteInfo;
  readonly hint: ThrottleHint;
  readonly now: number;
  readonly sentAt: number;
  readonly operations: readonly OperationCount[];
  readonly project: string;
}

/** "learned.post.assets.aggregate", "learned.assets.analytical": a bucket name from a learned key. */
export function learnedName(key: string): string {
  return `learned.${key
    .toLowerCase()
    .replace(IDENTITY_SUFFIX, ' per identity')
    .replace(/\{[^}]*\}/g, '_')
    .replace(/[^a-z0-9_-]+/g, '.')
    .replace(/^\.+|\.+$/g, '')}`;
}

function learnedKey(level: Level, method: string, route: RouteInfo, per: 'project' | 'identity'): string {
  const op = operationKey(method, route);
  const base =
    level === 'operation' && op !== null
      ? op
      : level !== 'api' && route.cls !== 'other'
        ? classKey(route)
        : level === 'class' && op !== null
          ? op
          : apiKey(route);
  return per === 'identity' ? base + IDENTITY_SUFFIX : base;
}

function baseKey(key: string): string {
  return key.endsWith(IDENTITY_SUFFIX) ? key.slice(0, -IDENTITY_SUFFIX.length) : key;
}

/** The call's project: the scope of its project-level buckets. */
function projectOf(buckets: readonly Bucket[]): string {
  for (let i = 0; i < buckets.length; i++) if (buckets[i].limit.per === 'project') return buckets[i].scope;
  const scope = buckets[0]?.scope ?? '';
  const slash = scope.indexOf('/');
  return slash < 0 ? scope : scope.slice(0, slash);
}

/** The buckets of the scope CDF's message names (Project or Identity), else all. */
function inScope(buckets: readonly Bucket[], scope: ThrottleHint['scope']): readonly Bucket[] {
  if (scope === null) return buckets;
  // Learned buckets stand for budgets CDF may keep per project or per identity.
  const out = buckets.filter((b) => b.limit.per === scope || b.limit.learned !== undefined);
  return out.length > 0 ? out : buckets;
}

/** The figure of a limit for a kind of 429: configured, or learned. */
function figureOf(limit: LimitConfig, kind: ThrottleKind): number {
  const f = limit.learned;
  if (f) return kind === 'rate' ? f.rate : f.concurrency;
  return kind === 'rate' ? limit.rate : limit.concurrency;
}

/** The lowest effective rate of the configured buckets on the path (where CDF refused, or above). */
function parentRate(buckets: readonly Bucket[]): number {
  let rate = Number.POSITIVE_INFINITY;
  for (const b of buckets) if (!b.limit.learned) rate = Math.min(rate, b.rate);
  return Number.isFinite(rate) ? rate : 0;
}

/** What got through for the calls a level covers, per second, over the tally's window. */
function passedRate(operations: readonly OperationCount[], level: Level, route: RouteInfo): number {
  if (operations.length === 0) return 0;
  if (level === 'operation') return operations[0].passedPerSecond;
  let sum = 0;
  for (const o of operations) if (level === 'api' || o.cls === route.cls) sum += o.passedPerSecond;
  return sum;
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

/** The level of CDF's tree a bucket stands for. */
function levelOf(limit: LimitConfig): Level {
  if (limit.learned) return limit.learned.level;
  if (limit.match.every((p) => !p.includes('**'))) return 'operation';
  return limit.classes !== null && limit.classes !== undefined ? 'class' : 'api';
}

/** A figure CDF's answers gave (a 429 named it, or it was found here), not one taken from a bucket's parents. */
const isFound = (p: Provenance) => p === 'learned' || p === 'stated';

/** A bucket as attribution sees it: its state before this 429's own charge. */
function candidateOf(b: Bucket, hint: ThrottleHint, now: number, sentAt: number): Candidate {
  const limit = b.limit;
  const f = limit.learned;
  const rate = hint.kind === 'rate';
  return {
    level: levelOf(limit),
    depth: depthOf(limit),
    figure: figureOf(limit, hint.kind),
    effective: rate ? b.rate : b.concurrency,
    near: rate ? b.tokensAt(now) < b.burst * NEAR_TOKENS : b.inFlight >= Math.max(1, b.concurrency * NEAR_SLOTS),
    learned: f !== undefined,
    learnedKind: f !== undefined && isFound(rate ? f.rateSource : f.concurrencySource),
    heldSince: f?.level === 'operation' && rate && sentAt > f.at && hint.stated !== null && b.rate <= hint.stated,
    statesRate: f?.statedRate !== undefined || b.rateSource === 'stated',
  };
}
