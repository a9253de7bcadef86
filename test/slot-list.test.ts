import { describe, expect, it } from 'vitest';
import { SlotList } from '../src/slot-list.js';

interface Item {
  slot: number;
  name: string;
}
const item = (name: string): Item => ({ slot: -1, name });
const names = (list: SlotList<Item>) => {
  const out: string[] = [];
  list.forEach((i) => {
    out.push(i.name);
  });
  return out.sort();
};

describe('SlotList', () => {
  it('adds once, deletes by moving the last entry into the gap, and keeps every slot right', () => {
    const list = new SlotList<Item>();
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map(item);
    for (const i of [a, b, c, d]) list.add(i);
    list.add(b); // already in: nothing changes
    expect(list.size).toBe(4);
    expect(list.delete(b)).toBe(true);
    expect(b.slot).toBe(-1);
    expect(d.slot).toBe(1); // the last one took b's place
    expect(list.delete(b)).toBe(false);
    expect(names(list)).toEqual(['a', 'c', 'd']);
    expect(list.delete(d)).toBe(true);
    expect(list.delete(a)).toBe(true);
    expect(c.slot).toBe(0);
    expect(list.toArray()).toEqual([c]);
    list.add(b);
    expect(b.slot).toBe(1);
    expect(names(list)).toEqual(['b', 'c']);
  });

  it('refuses to delete an entry whose slot points at another list', () => {
    const one = new SlotList<Item>();
    const other = new SlotList<Item>();
    const a = item('a');
    const b = item('b');
    one.add(a);
    other.add(b);
    // b claims slot 0, which in `one` holds a.
    expect(one.delete(b)).toBe(false);
    expect(one.size).toBe(1);
    expect(a.slot).toBe(0);
  });

  it('visits every entry once while the visitor deletes the one it is given', () => {
    const list = new SlotList<Item>();
    const all = Array.from({ length: 10 }, (_, i) => item(String(i)));
    for (const i of all) list.add(i);
    const seen: string[] = [];
    list.forEach((i) => {
      seen.push(i.name);
      if (Number(i.name) % 3 === 0) list.delete(i);
    });
    expect(seen.sort()).toEqual(all.map((i) => i.name).sort());
    expect(names(list)).toEqual(['1', '2', '4', '5', '7', '8']);
    list.forEach((i) => {
      list.delete(i);
    });
    expect(list.size).toBe(0);
    expect(all.every((i) => i.slot === -1)).toBe(true);
  });
});
