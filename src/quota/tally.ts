import type { OperationClass, RouteInfo } from '../cdf/index.js';
import { SlidingCounter } from '../retry/window.js';

/** 429s and answers are counted over this window: what attribution compares, and the learned rate's basis. */
export const TALLY_WINDOW_MS = 2000;
/** A family's tally is dropped this long after its last 429: counting costs nothing while CDF says yes. */
const ARMED_MS = 30_000;
/** Project and family pairs tallied at most, whatever callers send. */
const MAX_FAMILIES = 256;

const CALLS = 0;
const THROTTLED = 1;
const PASSED = 2;

/** One operation's answers in the window. */
export interface OperationCount {
  readonly cls: OperationClass;
  /** Calls answered (passed or 429). */
  readonly calls: number;
  readonly throttled: number;
  /** Calls that passed, per second of the window (or of the time since counting began). */
  readonly passedPerSecond: number;
}

interface FamilyTally {
  readonly ops: Map<RouteInfo, SlidingCounter>;
  armedAt: number;
  lastThrottledAt: number;
}

/**
 * Answers and 429s per operation of each API family and project, over a short sliding window: which
 * operation CDF refuses while its siblings pass is what tells the level of a 429 that names no figure. A
 * family is counted only from its first 429 until a while after its last, so a gateway CDF never refuses
 * does no counting at all.
 */
export class ThrottleTally {
  private readonly byProject = new Map<string, Map<string, FamilyTally>>();
  private families = 0;

  /** An answer that was not a 429. */
  passed(project: string, route: RouteInfo, now: number): void {
    const f = this.byProject.get(project)?.get(route.family);
    if (f === undefined) return;
    if (now - f.lastThrottledAt > ARMED_MS) {
      this.drop(project, route.family);
      return;
    }
    const c = this.counter(f, route);
    c.add(CALLS, now);
    c.add(PASSED, now);
  }

  /** A 429 (whatever it is charged to). */
  throttled(project: string, route: RouteInfo, now: number): void {
    let f = this.byProject.get(project)?.get(route.family);
    if (f === undefined) {
      if (this.families >= MAX_FAMILIES) this.clear();
      let byFamily = this.byProject.get(project);
      if (byFamily === undefined) {
        byFamily = new Map();
        this.byProject.set(project, byFamily);
      }
      f = { ops: new Map(), armedAt: now, lastThrottledAt: now };
      byFamily.set(route.family, f);
      this.families++;
    }
    f.lastThrottledAt = now;
    const c = this.counter(f, route);
    c.add(CALLS, now);
    c.add(THROTTLED, now);
  }

  /** How long the call's family has been counted (0 when it is not). */
  age(project: string, route: RouteInfo, now: number): number {
    const f = this.byProject.get(project)?.get(route.family);
    return f === undefined ? 0 : now - f.armedAt;
  }

  /** Every operation of the call's family with answers in the window, the call's own first. */
  operations(project: string, route: RouteInfo, now: number): OperationCount[] {
    const f = this.byProject.get(project)?.get(route.family);
    if (f === undefined) return [];
    const seconds = Math.max(0.25, Math.min(TALLY_WINDOW_MS, now - f.armedAt) / 1000);
    const out: OperationCount[] = [];
    const own = f.ops.get(route);
    if (own) out.push(countOf(route, own, now, seconds));
    for (const [r, c] of f.ops) if (r !== route) out.push(countOf(r, c, now, seconds));
    return out;
  }

  private counter(f: FamilyTally, route: RouteInfo): SlidingCounter {
    let c = f.ops.get(route);
    if (c === undefined) {
      c = new SlidingCounter(TALLY_WINDOW_MS, 3);
      f.ops.set(route, c);
    }
    return c;
  }

  private drop(project: string, family: string): void {
    const byFamily = this.byProject.get(project);
    if (byFamily?.delete(family)) this.families--;
    if (byFamily?.size === 0) this.byProject.delete(project);
  }

  private clear(): void {
    this.byProject.clear();
    this.families = 0;
  }
}

function countOf(route: RouteInfo, c: SlidingCounter, now: number, seconds: number): OperationCount {
  return {
    cls: route.cls,
    calls: c.sum(CALLS, now),
    throttled: c.sum(THROTTLED, now),
    passedPerSecond: c.sum(PASSED, now) / seconds,
  };
}
