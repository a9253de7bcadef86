import type { SimBudget } from './budgets.js';
import type { SimLimit, SimLimiter } from './types.js';

/**
 * The rate and concurrency count of one (budget, project[, identity]). The rate is counted by one of three
 * shapes; `inFlight` is the same in all of them.
 */
export interface Bucket {
  inFlight: number;
  /** The limit the bucket counts under; a changed limit only counts from the moment it changed. */
  limit: SimLimit;
  /** Brings the count up to `now`. */
  refill(now: number): void;
  /** Whether one more call fits the rate now (after refill). */
  hasRoom(): boolean;
  /** An admitted call spends the rate. */
  take(now: number): void;
  /** A refused call spends it too (chargeThrottled), without digging a hole deeper than one second of it. */
  charge(now: number): void;
  /** Room for a whole second of calls again (reset). */
  fill(): void;
}

/** Refills `rate` tokens a second up to `burst`: CDF's one-second budgets when burst = rate. */
export class TokenBucket implements Bucket {
  inFlight = 0;
  constructor(
    public tokens: number,
    public last: number,
    public limit: SimLimit,
  ) {}

  refill(now: number): void {
    const limit = this.limit;
    const elapsed = now - this.last;
    this.last = now;
    // The guard also keeps Infinity * 0 (unlimited rate, same instant) from turning the bucket into NaN.
    if (elapsed > 0 && this.tokens < limit.burst) {
      this.tokens = Math.min(limit.burst, this.tokens + (elapsed * limit.rate) / 1000);
    } else if (this.tokens > limit.burst) {
      this.tokens = limit.burst;
    }
  }

  hasRoom(): boolean {
    return this.tokens >= 1;
  }

  take(): void {
    this.tokens -= 1;
  }

  charge(): void {
    // Floor at -burst: hammering keeps the bucket empty without digging a hole that takes minutes to refill.
    this.tokens = Math.max(this.tokens - 1, -this.limit.burst);
  }

  fill(): void {
    this.tokens = Number.POSITIVE_INFINITY;
  }
}

const WINDOW_MS = 1000;

/** At most `rate` calls per clock second, the count starting again at every whole second (burst unused). */
export class FixedWindow implements Bucket {
  inFlight = 0;
  private window: number;
  private count = 0;
  constructor(
    now: number,
    public limit: SimLimit,
  ) {
    this.window = Math.floor(now / WINDOW_MS);
  }

  refill(now: number): void {
    const window = Math.floor(now / WINDOW_MS);
    if (window !== this.window) {
      this.window = window;
      this.count = 0;
    }
  }

  hasRoom(): boolean {
    return this.count < this.limit.rate;
  }

  take(): void {
    this.count++;
  }

  // A charged refusal fills this second's count; the next second starts afresh, so no hole outlives it.
  charge(): void {
    this.count++;
  }

  fill(): void {
    this.count = 0;
  }
}

/** At most `rate` calls in any 1 s: the times of the last second's calls, oldest first (burst unused). */
export class SlidingWindow implements Bucket {
  inFlight = 0;
  private times: number[] = [];
  private head = 0;
  constructor(public limit: SimLimit) {}

  refill(now: number): void {
    const times = this.times;
    let head = this.head;
    while (head < times.length && times[head] <= now - WINDOW_MS) head++;
    // Compacted now and then, so the array holds at most about one second of calls.
    if (head > 1024 && head * 2 > times.length) {
      this.times = times.slice(head);
      head = 0;
    }
    this.head = head;
  }

  hasRoom(): boolean {
    return this.times.length - this.head < this.limit.rate;
  }

  take(now: number): void {
    // An unlimited rate keeps no times: only its concurrency counts.
    if (this.limit.rate !== Number.POSITIVE_INFINITY) this.times.push(now);
  }

  // A charged refusal counts as a call made now; the window lets go of it one second later.
  charge(now: number): void {
    if (this.limit.rate === Number.POSITIVE_INFINITY) return;
    if (this.times.length - this.head < this.limit.rate) this.times.push(now);
    else if (this.limit.rate > 0) {
      // Full: the oldest call leaves, the refusal takes its place, so hammering keeps the window full.
      this.head++;
      this.times.push(now);
    }
  }

  fill(): void {
    this.times = [];
    this.head = 0;
  }
}

export interface Rejection {
  /** Which budget said no: "assets/aggregate identity concurrency". */
  by: string;
  budget: SimBudget;
  scope: Scope;
  kind: 'rate' | 'concurrency';
  /** The figure that refused (requests per second, or concurrent requests). */
  figure: number;
}

/** Buckets an admitted call holds until its response has finished. */
export type Held = Bucket[];

const NONE: Held = [];
// Keys come from client paths and tokens; a runaway key space must not grow the map without bound.
const MAX_BUCKETS = 100_000;

export type Scope = 'Project' | 'Identity';

export class Throttle {
  private buckets = new Map<string, Bucket>();

  constructor(private limiter: SimLimiter = 'token-bucket') {}

  /** Another shape counts from scratch: every budget starts full, calls in flight are not counted in it. */
  setLimiter(limiter: SimLimiter): void {
    if (limiter === this.limiter) return;
    this.limiter = limiter;
    this.buckets = new Map();
  }

  private bucket(key: string, limit: SimLimit, now: number): Bucket {
    let b = this.buckets.get(key);
    if (b) {
      // A new limit object means the options changed; settle() brought the tokens up to that moment.
      b.limit = limit;
      b.refill(now);
    } else {
      if (this.buckets.size >= MAX_BUCKETS) this.dropIdle();
      b = this.create(limit, now);
      this.buckets.set(key, b);
    }
    return b;
  }

  private create(limit: SimLimit, now: number): Bucket {
    if (this.limiter === 'fixed-window') return new FixedWindow(now, limit);
    if (this.limiter === 'sliding-window') return new SlidingWindow(limit);
    return new TokenBucket(limit.burst, now, limit);
  }

  /**
   * Checks `budgets` in order (narrowest first), each for concurrency then rate, project then identity.
   * Admitted: the rate spent and a slot taken in every bucket. Refused: nothing is taken, unless `charge`,
   * when every budget checked up to the one that refused spends its rate, as a throttled call still costs
   * CDF the work of the checks it passed.
   */
  admit(
    budgets: readonly SimBudget[],
    project: string,
    identity: string,
    charge: boolean,
    now: number,
  ): Held | Rejection {
    if (budgets.length === 0) return NONE;
    const taken: Bucket[] = [];
    for (const budget of budgets) {
      const p = budget.project && this.bucket(`${budget.name}\u0000${project}`, budget.project, now);
      const i = budget.identity && this.bucket(`${budget.name}\u0000${project}\u0000${identity}`, budget.identity, now);
      const refusal =
        (p && p.inFlight >= p.limit.concurrency && refused(budget, 'Project', 'concurrency', p.limit.concurrency)) ||
        (i && i.inFlight >= i.limit.concurrency && refused(budget, 'Identity', 'concurrency', i.limit.concurrency)) ||
        (p && !p.hasRoom() && refused(budget, 'Project', 'rate', p.limit.rate)) ||
        (i && !i.hasRoom() && refused(budget, 'Identity', 'rate', i.limit.rate)) ||
        undefined;
      if (p) taken.push(p);
      if (i) taken.push(i);
      if (refusal) {
        if (charge) for (const b of taken) b.charge(now);
        return refusal;
      }
    }
    for (const b of taken) {
      b.take(now);
      b.inFlight++;
    }
    return taken;
  }

  release(held: Held): void {
    for (const b of held) b.inFlight--;
  }

  /** Brings every bucket up to `now` under the limit it had, before new limits take over. */
  settle(now: number): void {
    for (const b of this.buckets.values()) b.refill(now);
  }

  /** Full buckets again. Buckets with calls in flight stay (their calls will still release slots) and refill lazily. */
  refillAll(): void {
    for (const [key, b] of this.buckets) {
      if (b.inFlight === 0) this.buckets.delete(key);
      else b.fill();
    }
  }

  private dropIdle(): void {
    for (const [key, b] of this.buckets) if (b.inFlight === 0) this.buckets.delete(key);
  }
}

function refused(budget: SimBudget, scope: Scope, kind: 'rate' | 'concurrency', figure: number): Rejection {
  return { by: `${budget.name} ${scope.toLowerCase()} ${kind}`, budget, scope, kind, figure };
}

export function isRejection(x: Held | Rejection): x is Rejection {
  return !Array.isArray(x);
}
