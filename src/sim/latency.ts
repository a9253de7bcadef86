import { globToRegExp } from './plan.js';
import type { SimRouteLatency } from './types.js';

interface Compiled {
  test: RegExp;
  method: string | undefined;
  ms: number;
}

/** Which answer delay a call gets: the first `latency` entry that matches it, else `latencyMs`. */
export class RouteLatency {
  private readonly routes: Compiled[];

  constructor(
    routes: readonly SimRouteLatency[],
    private readonly fallback: number,
  ) {
    this.routes = routes.map((r) => ({ test: globToRegExp(r.match), method: r.method, ms: r.ms }));
  }

  /** `segments`: the path after /api/v1/projects/{project}, split on '/'. */
  msOf(method: string, segments: readonly string[]): number {
    if (this.routes.length === 0) return this.fallback;
    const path = `/${segments.join('/')}`;
    for (const r of this.routes) if ((r.method === undefined || r.method === method) && r.test.test(path)) return r.ms;
    return this.fallback;
  }
}
