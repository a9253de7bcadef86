// Preloaded into a proxy by bench/gc-mode.mjs (node --import): counts V8's collections by kind and writes
// them to GC_OBSERVER_OUT when the process exits. SIGUSR2 starts the count afresh (after the warm-up).
import { writeFileSync } from 'node:fs';
import { constants, PerformanceObserver, performance } from 'node:perf_hooks';

const KINDS = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'scavenge',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'markCompact',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incrementalMarking',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakCallbacks',
};
let counts = {};
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    const kind = KINDS[entry.detail?.kind] ?? 'other';
    counts[kind] ??= { n: 0, ms: 0 };
    const c = counts[kind];
    c.n++;
    c.ms += entry.duration;
  }
}).observe({ entryTypes: ['gc'] });
process.on('SIGUSR2', () => {
  counts = {};
});
// SIGWINCH: the event loop stalls for GC_OBSERVER_STALL_MS (bench/gc-mode.mjs BENCH_STALL_MS), as a long
// collection or a starved core would stall it, so that the requests pile up.
process.on('SIGWINCH', () => {
  const until = performance.now() + Number(process.env.GC_OBSERVER_STALL_MS ?? 0);
  while (performance.now() < until);
});
process.on('exit', () => writeFileSync(process.env.GC_OBSERVER_OUT, JSON.stringify(counts)));
