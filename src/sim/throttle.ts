import type { SimLimit } from './types.js';

/** Token bucket plus concurrency count for one (scope, key, family). */
export class Bucket {
  inFlight = 0;
  constructor(
    public tokens: number,
    public last: number,
  ) {}

  refill(limit: SimLimit, now: number): void {
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
}

/** Buckets an admitted call holds until its response has finished. */
export type Held = Bucket[];

const NONE: Held = [];
// Families come from client paths; a runaway key space must not grow the map without bound.
const MAX_BUCKETS = 100_000;

export class Throttle {
  private readonly buckets = new Map<string, Bucket>();

  private bucket(key: string, limit: SimLimit, now: number): Bucket {
    let b = this.buckets.get(key);
    if (b) {
      b.refill(limit, now);
    } else {
      if (this.buckets.size >= MAX_BUCKETS) this.dropIdle();
      b = new Bucket(limit.burst, now);
      this.buckets.set(key, b);
    }
    return b;
  }

  /**
   * CDF's order: concurrency, then rate, each for project then identity. Nothing is taken unless every
   * check passes, so an identity rejection does not eat the project's budget.
   */
  admit(
    project: SimLimit | null,
    projectKey: string,
    identity: SimLimit | null,
    identityKey: string,
    charge: boolean,
    now: number,
  ): Held | Rejection {
    if (project === null && identity === null) return NONE;
    const p = project === null ? undefined : this.bucket(`p\u0000${projectKey}`, project, now);
    const i = identity === null ? undefined : this.bucket(`i\u0000${identityKey}`, identity, now);
    let message: string | undefined;
    if (p && project && p.inFlight >= project.concurrency) {
      message = `Project exceeded maximum number='${project.concurrency}' of concurrent requests. Please try again later.`;
    } else if (i && identity && i.inFlight >= identity.concurrency) {
      message = `Identity exceeded maximum number='${identity.concurrency}' of concurrent requests. Please try again later.`;
    } else if (p && project && p.tokens < 1) {
      message = `Project exceeded maximum number='${project.rate}' of requests per second. Please try again later.`;
    } else if (i && identity && i.tokens < 1) {
      message = `Identity exceeded maximum number='${identity.rate}' of requests per second. Please try again later.`;
    }
    if (message !== undefined) {
      if (charge) {
        // Floor at -burst: hammering keeps the bucket empty without digging a hole that takes minutes to refill.
        if (p && project) p.tokens = Math.max(p.tokens - 1, -project.burst);
        if (i && identity) i.tokens = Math.max(i.tokens - 1, -identity.burst);
      }
      return { message };
    }
    const held: Held = [];
    if (p) {
      p.tokens -= 1;
      p.inFlight++;
      held.push(p);
    }
    if (i) {
      i.tokens -= 1;
      i.inFlight++;
      held.push(i);
    }
    return held;
  }

  release(held: Held): void {
    for (const b of held) b.inFlight--;
  }

  /** Brings every bucket up to `now` under the limits that applied until now, before new limits take over. */
  settle(project: SimLimit | null, identity: SimLimit | null, now: number): void {
    for (const [key, b] of this.buckets) {
      const limit = key.charCodeAt(0) === 0x70 /* p */ ? project : identity;
      if (limit) b.refill(limit, now);
    }
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

export function isRejection(x: Held | Rejection): x is Rejection {
  return !Array.isArray(x);
}
