import { performance } from 'node:perf_hooks';
import { Dataset } from './data.js';
import { FaultQueue } from './faults.js';
import { FunctionCalls } from './functions.js';
import { RouteLatency } from './latency.js';
import { checkOptions } from './options.js';
import { BudgetPlan } from './plan.js';
import { RawStore } from './raw.js';
import { Stats } from './stats.js';
import { Throttle } from './throttle.js';
import type { SimOptions } from './types.js';

/** The simulator's mutable state, shared by the request pipeline and the control API. */
export class Core {
  data: Dataset;
  readonly stats = new Stats();
  readonly throttle: Throttle;
  readonly faults = new FaultQueue();
  readonly raw = new RawStore();
  readonly functions = new FunctionCalls();
  /** Which budgets a request spends; follows the options. */
  plan: BudgetPlan;
  /** How long an admitted call takes to answer; follows the options. */
  latency: RouteLatency;

  constructor(readonly options: SimOptions) {
    this.data = new Dataset(options.items);
    this.plan = new BudgetPlan(options);
    this.throttle = new Throttle(options.limiter);
    this.latency = new RouteLatency(options.latency, options.latencyMs);
  }

  /** Mutates `options` in place so holders of the object see the change. */
  update(partial: Partial<SimOptions>): void {
    const next = checkOptions(partial);
    // The server is already bound.
    delete next.host;
    delete next.port;
    const limitsChange =
      next.project !== undefined ||
      next.identity !== undefined ||
      next.tree !== undefined ||
      next.treeScale !== undefined ||
      next.tight !== undefined;
    // Tokens earned so far were earned at the old rate; the new rate only counts from now.
    if (limitsChange) this.throttle.settle(performance.now());
    Object.assign(this.options, next);
    if (limitsChange) this.plan = new BudgetPlan(this.options);
    if (next.limiter !== undefined) this.throttle.setLimiter(next.limiter);
    if (next.latency !== undefined || next.latencyMs !== undefined) {
      this.latency = new RouteLatency(this.options.latency, this.options.latencyMs);
    }
    if (this.options.items !== this.data.count) this.data = new Dataset(this.options.items);
  }

  reset(): void {
    this.stats.reset();
    this.throttle.refillAll();
    this.faults.clear();
    this.data.clearCreated();
    this.raw.clear();
    this.functions.clear();
  }
}
