import { describe, expect, it } from 'vitest';
import { type AppRef, FairQueue } from '../src/quota/fair-queue.js';

interface Item {
  id: string;
  cancelled: boolean;
}

const app = (identity: string, id: string, weight = 1, priority = 0): AppRef => ({
  id,
  identity,
  weight,
  priority,
  label: id,
});

function fill(q: FairQueue<Item>, who: AppRef, n: number): Item[] {
  const items: Item[] = [];
  for (let i = 0; i < n; i++) {
    const item = { id: `${who.identity}/${who.id}/${i}`, cancelled: false };
    q.push(who, item);
    items.push(item);
  }
  return items;
}

function drain(q: FairQueue<Item>, n = Number.POSITIVE_INFINITY): Item[] {
  const out: Item[] = [];
  while (out.length < n) {
    const item = q.shift();
    if (!item) break;
    out.push(item);
  }
  return out;
}

const identityOf = (item: Item) => item.id.split('/')[0];

describe('FairQueue: two levels, identity first, then app', () => {
  it('gives two identities alternate turns, however many app names one of them uses', () => {
    const q = new FairQueue<Item>();
    // Identity "greedy" sends a new app name on every call; "honest" uses one.
    for (let i = 0; i < 50; i++) fill(q, app('greedy', `name-${i}`), 1);
    fill(q, app('honest', 'one-app'), 50);
    const first40 = drain(q, 40);
    const greedy = first40.filter((i) => identityOf(i) === 'greedy').length;
    expect(greedy).toBe(20);
    expect(q.size).toBe(60);
  });

  it('within an identity, shares turns between its apps by weight', () => {
    const q = new FairQueue<Item>();
    fill(q, app('id', 'heavy', 2), 30);
    fill(q, app('id', 'light', 1), 30);
    const first = drain(q, 30);
    const heavy = first.filter((i) => i.id.includes('/heavy/')).length;
    expect(heavy).toBe(20);
  });

  it('an identity weight is its largest app weight, not their sum', () => {
    const q = new FairQueue<Item>();
    fill(q, app('a', 'x', 2), 20);
    fill(q, app('a', 'y', 2), 20);
    fill(q, app('b', 'z', 2), 40);
    const first = drain(q, 40);
    expect(first.filter((i) => identityOf(i) === 'a').length).toBe(20);
  });

  it('serves a higher priority level first', () => {
    const q = new FairQueue<Item>();
    fill(q, app('low', 'l', 1, 0), 5);
    fill(q, app('high', 'h', 1, 1), 5);
    expect(drain(q, 5).every((i) => identityOf(i) === 'high')).toBe(true);
    expect(drain(q).length).toBe(5);
  });

  it('keeps FIFO order within one app, and front pushes go first for that app only', () => {
    const q = new FairQueue<Item>();
    const items = fill(q, app('a', 'x'), 3);
    const moved = { id: 'a/x/moved', cancelled: false };
    q.push(app('a', 'x'), moved, true);
    expect(drain(q).map((i) => i.id)).toEqual(['a/x/moved', ...items.map((i) => i.id)]);
  });

  it('skips cancelled items lazily and counts only live ones', () => {
    const q = new FairQueue<Item>();
    const a = fill(q, app('a', 'x'), 3);
    const b = fill(q, app('b', 'y'), 2);
    q.cancel(a[0]);
    q.cancel(b[0]);
    q.cancel(b[0]);
    expect(q.size).toBe(3);
    expect([...q.items()].length).toBe(3);
    expect(q.peek()).toBe(q.peek());
    const order = drain(q).map((i) => i.id);
    expect(order).toHaveLength(3);
    expect(order).not.toContain(a[0].id);
    expect(q.size).toBe(0);
    expect(q.identityCount()).toBe(0);
  });

  it('forgets identities and apps whose queues emptied (bounded by what waits)', () => {
    const q = new FairQueue<Item>();
    for (let i = 0; i < 1000; i++) fill(q, app(`id-${i}`, `app-${i}`), 1);
    expect(q.identityCount()).toBe(1000);
    drain(q);
    expect(q.peek()).toBeUndefined();
    expect(q.identityCount()).toBe(0);
    expect(q.waitingByApp().size).toBe(0);
  });

  it('stays fair over a long mixed run (weights 1:3 between identities by their apps)', () => {
    const q = new FairQueue<Item>();
    fill(q, app('a', 'x', 1), 400);
    fill(q, app('b', 'y', 3), 400);
    const first = drain(q, 400);
    expect(first.filter((i) => identityOf(i) === 'b').length).toBe(300);
  });
});
