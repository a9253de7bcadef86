import { describe, expect, it } from 'vitest';
import { type LabRun, okPerSecond, runLab } from './lab.js';
import { SCENARIOS } from './lab-scenarios.js';

const PRINT = process.env.LAB_PRINT === '1';
const range = (xs: number[], f: (x: number) => string) => `${f(Math.min(...xs))}-${f(Math.max(...xs))}`;

describe('learning lab (virtual time)', () => {
  it('prints the matrix', async () => {
    if (!PRINT) return;
    const only = process.env.LAB_ONLY?.split(',');
    const lines: string[] = [];
    for (const s of SCENARIOS) {
      if (only && !only.includes(s.name)) continue;
      if (process.env.LAB_ADAPTIVE)
        s.gateway = { ...(s.gateway as object), adaptive: JSON.parse(process.env.LAB_ADAPTIVE) };
      const cols: string[] = [];
      for (const direct of [true, false]) {
        const runs: LabRun[] = [];
        for (const seed of [1, 2, 3]) runs.push(await runLab(s, { direct, seed }));
        const after = runs.map((r) => okPerSecond(r, s.learning, s.seconds));
        const share = runs.map((r) => r.throttled / Math.max(1, r.ok + r.throttled));
        const per = Object.entries(s.allowed)
          .filter(([k]) => k !== 'total')
          .map(
            ([k]) =>
              `${k.split(' ').pop()} ${range(
                runs.map((r) => okPerSecond(r, s.learning, s.seconds, k)),
                (x) => x.toFixed(1),
              )}`,
          )
          .join(' ');
        const total = s.allowed.total;
        cols.push(
          `${direct ? 'direct' : 'gw'} ${range(
            runs.map((r) => r.ok / s.seconds),
            (x) => x.toFixed(0),
          )}/s after ${range(after, (x) => (total ? `${((x / total) * 100).toFixed(0)}%` : x.toFixed(0)))} 429 ${range(share, (x) => `${(x * 100).toFixed(1)}%`)} failed ${range(
            runs.map((r) => r.failed),
            String,
          )}${per ? ` ${per}` : ''}`,
        );
      }
      lines.push(`${s.name.padEnd(30)} ${cols[1].padEnd(80)} | ${cols[0]}`);
    }
    console.log(`\n${lines.join('\n')}`);
    expect(lines.length).toBeGreaterThan(0);
  }, 600_000);
});
