import { it } from 'vitest';
import { runLab } from './lab.js';
import { SCENARIOS } from './lab-scenarios.js';

it('figures', async () => {
  const s = SCENARIOS.find((x) => x.name === process.env.LAB_ONLY)!;
  const run = await runLab(s, { seed: 1 });
  const g = run.gateways[0];
  for (const [i, f] of g.figures.entries())
    console.log(
      `t=${i} ok ${run.okBySecond[i] ?? 0} 429 ${run.throttledBySecond[i] ?? 0} | ${Object.entries(f)
        .map(
          ([k, v]) =>
            `${k.replace(/:lab.*$/, k.includes('/') ? '/id' : '')} ${v.rate.toFixed(0)}/${v.concurrency}${v.rateSource[0]}`,
        )
        .join(' ')}`,
    );
});
