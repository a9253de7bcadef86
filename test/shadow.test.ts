import { describe, expect, it } from 'vitest';
import { Bucket, type QuotaLimit, ShadowLedger, type ShadowOutcome } from '../src/quota/index.js';
import { call, startStack } from './helpers.js';
import { quotaLimitOf } from './limits.js';

const P = '/api/v1/projects/shadow';

const limit = (over: Partial<QuotaLimit>): QuotaLimit =>
  quotaLimitOf({ name: 'trial', rate: 2, burst: 2, concurrency: 10, mode: 'shadow', ...over });
/** The scheduler the ledger tells which buckets are in use (nothing forgets them in these tests). */
const keeper = { used() {} };

describe('shadow buckets (injected clock)', () => {
  it('counts admitted, queued with the wait it would have had, and refused past the queue bounds', () => {
    const seen: Array<[ShadowOutcome, number]> = [];
    const ledger = new ShadowLedger(
      { maxWaitMs: 1000, maxQueued: 10 },
      (_b, outcome, waitMs) => seen.push([outcome, Math.round(waitMs)]),
      keeper,
    );
    const b = new Bucket(limit({}), 'p', 0);
    // Capacity 1.9 (2 less the 50 ms jitter reserve): one now, then owed tokens at 2/s, refused past 1 s.
    for (let i = 0; i < 4; i++) ledger.take([b], 0);
    expect(seen).toEqual([
      ['admitted', 0],
      ['queued', 50],
      ['queued', 550],
      ['refused', 0],
    ]);
    // A second later the debt is paid back and the bucket admits again.
    seen.length = 0;
    ledger.release([b]);
    ledger.take([b], 1600);
    expect(seen).toEqual([['admitted', 0]]);
  });

  it('counts a call past the concurrency as queued, and frees the slot on release', () => {
    const seen: ShadowOutcome[] = [];
    const ledger = new ShadowLedger({ maxWaitMs: 1000, maxQueued: 10 }, (_b, outcome) => seen.push(outcome), keeper);
    const b = new Bucket(limit({ rate: 100, burst: 100, concurrency: 1 }), 'p', 0);
    ledger.take([b], 0);
    ledger.take([b], 0);
    ledger.release([b]);
    ledger.release([b]);
    ledger.take([b], 0);
    expect(seen).toEqual(['admitted', 'queued', 'admitted']);
    expect(b.inFlight).toBe(1);
  });
});

describe('mode: shadow through the gateway', () => {
  it('never delays a call and its own series move', async () => {
    const stack = await startStack({
      limits: [
        { name: 'roomy', match: '/**', per: 'project', rate: 1000, burst: 1000, concurrency: 100 },
        { name: 'trial', match: '/assets/**', per: 'project', rate: 1, burst: 1, concurrency: 2, mode: 'shadow' },
      ],
      queue: { maxWaitMs: 1500, maxQueued: 100 },
    });
    try {
      const answers = await Promise.all(
        Array.from({ length: 12 }, () => call(stack, `${P}/assets/list`, { body: { limit: 1 } })),
      );
      expect(answers.map((a) => a.status)).toEqual(Array(12).fill(200));
      // Nothing waited in the gateway, CDF saw every call, the headers name the enforcing bucket only.
      const lines = stack.logs.requests();
      expect(lines).toHaveLength(12);
      for (const l of lines) expect(l.queuedMs).toBeUndefined();
      expect(stack.sim.stats().calls).toBe(12);
      for (const a of answers) expect(a.headers.get('ratelimit-policy')).toMatch(/^"roomy";/);

      const metrics = await (await fetch(`${stack.url}/metrics`)).text();
      const count = (outcome: string) =>
        Number(
          new RegExp(`^cdf_gateway_shadow_decisions_total\\{bucket="trial",outcome="${outcome}"\\} (\\d+)$`, 'm').exec(
            metrics,
          )?.[1] ?? 0,
        );
      // 1/s with a burst of 1, 12 calls at once: one or two admitted (as it refills while they arrive), one
      // or two owed within the 1.5 s the queue would wait, the rest refused; every attempt counted once.
      expect(count('admitted')).toBeGreaterThanOrEqual(1);
      expect(count('queued')).toBeGreaterThanOrEqual(1);
      expect(count('refused')).toBeGreaterThanOrEqual(6);
      expect(count('admitted') + count('queued') + count('refused')).toBe(12);
      const waited = Number(/^cdf_gateway_shadow_wait_seconds_total\{bucket="trial"\} (\S+)$/m.exec(metrics)?.[1]);
      expect(waited).toBeGreaterThan(0.5);
      expect(metrics).not.toMatch(/cdf_gateway_queue_rejected_total\{bucket="trial"[^}]*\} [1-9]/);
    } finally {
      await stack.close();
    }
  });
});
