import { describe, expect, it } from 'vitest';
import { applyHeapPolicy, HEAP_GROWING_FACTOR } from '../src/heap.js';

describe('heap policy (src/heap.ts)', () => {
  it('sets the growing factor unless node was started with its own', () => {
    expect(HEAP_GROWING_FACTOR).toBeGreaterThan(1);
    expect(applyHeapPolicy(['--heap-growing-percent=50'])).toBe(false);
    expect(applyHeapPolicy(['--max-old-space-size=512', '--heap_growing_percent=20'])).toBe(false);
    expect(applyHeapPolicy(['--max-old-space-size=512'])).toBe(true);
  });
});
