import * as promClient from 'prom-client';
import { describe, expect, it } from 'vitest';
import { HistogramSeries, LabelledHistogram } from '../src/metrics/histogram.js';
import { Registry } from '../src/metrics/prom.js';

const BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

describe('LabelledHistogram', () => {
  it("exports what prom-client's Histogram exports for the same observations, text and JSON", async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const help = 'Time of one upstream attempt, by API family.';
    const histogram = new LabelledHistogram('t_seconds', help, 'family', BOUNDS, ours);
    const reference = new promClient.Histogram({
      name: 't_seconds',
      help,
      labelNames: ['family'],
      buckets: BOUNDS,
      registers: [theirs],
    });
    // On the bounds, between them, above the last, zero, and a NaN (prom-client refuses it; ours drops it).
    const values = [0, 0.005, 0.0051, 0.01, 0.3, 1, 59.9, 60, 61, 1000, 0.02, 0.02];
    values.forEach((v, i) => {
      const family = i % 3 === 0 ? 'timeseries' : 'assets';
      histogram.of(family).observe(v);
      reference.labels(family).observe(v);
    });
    histogram.of('assets').observe(Number.NaN);
    expect(await ours.metrics()).toBe(await theirs.metrics());
    // The JSON too, but for prom-client's `exemplar: null`, which the gateway never records.
    const withoutExemplars = (metrics: Awaited<ReturnType<Registry['getMetricsAsJSON']>>) =>
      metrics.map((m) => ({
        ...m,
        values: m.values.map((v) => {
          const { exemplar: _, ...rest } = v as typeof v & { exemplar?: unknown };
          return rest;
        }),
      }));
    expect(await ours.getMetricsAsJSON()).toEqual(withoutExemplars(await theirs.getMetricsAsJSON()));
    // Merged with another registry, as the gateway merges its own with the process metrics.
    expect(await Registry.merge([ours, new Registry()]).metrics()).toBe(await theirs.metrics());
    histogram.reset();
    reference.reset();
    expect(await ours.metrics()).toBe(await theirs.metrics());
  });

  it('counts a value in the first bucket whose bound it does not exceed', () => {
    const s = new HistogramSeries([1, 2, 5]);
    for (const v of [0.5, 1, 1.5, 2, 4, 5, 6]) s.observe(v);
    expect([...s.counts]).toEqual([2, 2, 2]);
    expect(s.count).toBe(7);
    expect(s.sum).toBe(20);
  });
});
