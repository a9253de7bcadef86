import { describe, expect, it } from 'vitest';
import {
  cliHeapPolicy,
  HEAP_GROWING_FACTOR,
  HeapPolicy,
  LOWER_AFTER_MS,
  RAISE_AT_BYTES_PER_SECOND,
} from '../src/heap.js';

describe('heap policy (src/heap.ts)', () => {
  it('raises the growing factor while large bodies flow and gives it back to V8 after a quiet spell', () => {
    const flags: string[] = [];
    const policy = new HeapPolicy((f) => flags.push(f));
    let t = 0;
    const at = (ms: number) => {
      t += ms;
      return t;
    };
    // Small calls: nothing changes.
    for (let i = 0; i < 30; i++) policy.observe(RAISE_AT_BYTES_PER_SECOND / 10, at(1000));
    expect(flags).toEqual([]);
    // Large answers: raised once, however long they last.
    for (let i = 0; i < 30; i++) policy.observe(RAISE_AT_BYTES_PER_SECOND * 8, at(1000));
    expect(flags).toEqual([`--heap-growing-percent=${(HEAP_GROWING_FACTOR - 1) * 100}`]);
    expect(policy.factorRaised).toBe(true);
    // A short lull keeps it; a quiet spell of LOWER_AFTER_MS gives V8 its own factor back.
    policy.observe(0, at(LOWER_AFTER_MS / 2));
    expect(policy.factorRaised).toBe(true);
    policy.observe(0, at(LOWER_AFTER_MS / 2));
    expect(flags).toEqual([`--heap-growing-percent=${(HEAP_GROWING_FACTOR - 1) * 100}`, '--heap-growing-percent=0']);
    expect(policy.changes).toBe(2);
  });

  it('leaves the heap alone when node was started with its own --heap-growing-percent', () => {
    expect(cliHeapPolicy(['--heap-growing-percent=50'])).toBeNull();
    expect(cliHeapPolicy(['--max-old-space-size=512', '--heap_growing_percent=20'])).toBeNull();
    expect(cliHeapPolicy(['--max-old-space-size=512'])).toBeInstanceOf(HeapPolicy);
  });
});
