import { afterEach, describe, expect, it } from 'vitest';
import { call, type Stack, startStack } from './helpers.js';

// The gateway on its default configuration in front of the simulator enforcing CDF's documented tree:
// counts at the simulator, never timings.

const P = '/api/v1/projects/tree';
let stack: Stack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

describe('the default table against the documented tree', () => {
  it('an aggregate burst from one identity reaches CDF within its Aggregation budget (5 concurrent, 12/s)', async () => {
    stack = await startStack({}, { latencyMs: 100 });
    const s = stack;
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => call(s, `${P}/assets/aggregate`, { body: {}, token: 'Bearer report' })),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
    const stats = s.sim.stats();
    expect(stats.byClass['assets/aggregate'].ok).toBe(20);
    // Straight to the simulator, 15 of these 20 would be refused (5 concurrent); the gateway queues them.
    expect(stats.throttled).toBeLessThanOrEqual(2);
    expect(stats.maxInFlight).toBeLessThanOrEqual(5);
  });

  it('by-ids calls keep flowing while listing waits for its Analytical budget', async () => {
    stack = await startStack({}, { latencyMs: 50 });
    const s = stack;
    const lists = Array.from({ length: 80 }, () =>
      call(s, `${P}/assets/list`, { body: { limit: 1 }, token: 'Bearer sync' }),
    );
    const byids = await Promise.all(
      Array.from({ length: 40 }, () =>
        call(s, `${P}/assets/byids`, { body: { items: [{ id: 1 }] }, token: 'Bearer ui' }),
      ),
    );
    expect(byids.map((a) => a.status)).toEqual(Array(40).fill(200));
    // The 80 listings need about three seconds of the identity's 23/s; the by-ids calls did not wait for them.
    const stats = s.sim.stats();
    expect(stats.byClass['assets/crud'].ok).toBe(40);
    expect(stats.byClass['assets/analytical']?.ok ?? 0).toBeLessThan(80);
    expect((await Promise.all(lists)).every((a) => a.status === 200)).toBe(true);
    expect(s.sim.stats().throttled).toBeLessThanOrEqual(2);
  });
});
