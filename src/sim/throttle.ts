import type { SimBudget } from './budgets.js';
import type { SimLimit } from './types.js';

/** Token bucket plus concurrency count for one (budget, project[, identity]). */
export class Bucket {
  inFlight = 0;
  constructor(
    public tokens: number,
    public last: number,
    /** The limit the tokens were earned under; a changed limit only counts from the moment it changed. */
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
}

export interface Rejection {
  message: string;
  /** Which budget said no: "assets/aggregate identity concurrency". */
  by: string;
}

/** Buckets an admitted call holds until its response has finished. */
export type Held = Bucket[];

const NONE: Held = [];
// Keys come from client paths and tokens; a runaway key space must not grow the map without bound.
const MAX_BUCKETS = 100_000;

type Scope = 'Project' | 'Identity';

export class Throttle {
  private readonly buckets = new Map<string, Bucket>();

  private bucket(key: string, limit: SimLimit, now: number): Bucket {
    let b = this.buckets.get(key);
    if (b) {
      // A new limit object means the options changed; settle() brought the tokens up to that moment.
      b.limit = limit;
      b.refill(now);
    } else {
      if (this.buckets.size >= MAX_BUCKETS) this.dropIdle();
      b = new Bucket(limit.burst, now, limit);
      this.buckets.set(key, b);
    }
    return b;
  }

  /**
   * Checks `budgets` in order (narrowest first), each for concurrency then rate, project then identity.
   * Admitted: a token and a slot taken from every bucket. Refused: nothing is taken, unless `charge`, when
   * every budget checked up to the one that refused loses a token, as a throttled call still costs CDF
   * the work of the checks it passed.
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
        (p && p.inFlight >= p.limit.concurrency && concurrencyRefusal('Project', budget, p.limit)) ||
        (i && i.inFlight >= i.limit.concurrency && concurrencyRefusal('Identity', budget, i.limit)) ||
        (p && p.tokens < 1 && rateRefusal('Project', budget, p.limit)) ||
        (i && i.tokens < 1 && rateRefusal('Identity', budget, i.limit)) ||
        undefined;
      if (p) taken.push(p);
      if (i) taken.push(i);
      if (refusal) {
        if (charge) {
          // Floor at -burst: hammering keeps the bucket empty without digging a hole that takes minutes to refill.
          for (const b of taken) b.tokens = Math.max(b.tokens - 1, -b.limit.burst);
        }
        return refusal;
      }
    }
    for (const b of taken) {
      b.tokens -= 1;
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
      else b.tokens = Number.POSITIVE_INFINITY;
    }
  }

  private dropIdle(): void {
    for (const [key, b] of this.buckets) if (b.inFlight === 0) this.buckets.delete(key);
  }
}

function concurrencyRefusal(scope: Scope, budget: SimBudget, limit: SimLimit): Rejection {
  return {
    message: `${scope} exceeded maximum number='${limit.concurrency}' of concurrent requests. Please try again later.`,
    by: `${budget.name} ${scope.toLowerCase()} concurrency`,
  };
}

function rateRefusal(scope: Scope, budget: SimBudget, limit: SimLimit): Rejection {
  // CDF's rate messages may name no number: the gateway must then tell the level from the operation.
  const message = budget.statesRate
    ? `${scope} exceeded maximum number='${limit.rate}' of requests per second. Please try again later.`
    : `${scope} exceeded the request rate limit. Please try again later.`;
  return { message, by: `${budget.name} ${scope.toLowerCase()} rate` };
}

/** The same refusal from a stand-in whose messages name no figure: "Project exceeded the concurrent requests limit." */
export function unstated(message: string): string {
  return message.replace(/maximum number='[^']*' of (concurrent requests|requests per second)/, 'the $1 limit');
}

export function isRejection(x: Held | Rejection): x is Rejection {
  return !Array.isArray(x);
}
