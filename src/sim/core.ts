import { performance } from 'node:perf_hooks';
import { Dataset } from './data.js';
import { FaultQueue } from './faults.js';
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
  readonly throttle = new Throttle();
  readonly faults = new FaultQueue();
  readonly raw = new RawStore();
  /** Which budgets a request spends; follows the options. */
  plan: BudgetPlan;

  constructor(readonly options: SimOptions) {
    this.data = new Dataset(options.items);
    this.plan = new BudgetPlan(options);
  }

  /** Mutates `options` in place so holders of the object see the change. */
  update(partial: Partial<SimOptions>): void {
    const next = checkOptions(partial);
    // The server is already bound.
    delete next.host;
    delete next.port;
    const limitsChange =
      next.project !== undefined || next.identity !== undefined || next.tree !== undefined || next.tight !== undefined;
    // Tokens earned so far were earned at the old rate; the new rate only counts from now.
    if (limitsChange) this.throttle.settle(performance.now());
    Object.assign(this.options, next);
    if (limitsChange) this.plan = new BudgetPlan(this.options);
    if (this.options.items !== this.data.count) this.data = new Dataset(this.options.items);
  }

  reset(): void {
    this.stats.reset();
    this.throttle.refillAll();
    this.faults.clear();
    this.data.clearCreated();
    this.raw.clear();
  }
}
