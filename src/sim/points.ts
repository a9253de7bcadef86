/**
 * Datapoints inserted through `POST /timeseries/data`, per series, so a retrieve returns them. Bounded:
 * past MAX_POINTS the series written to longest ago is forgotten whole.
 */
const MAX_POINTS = 1_000_000;

export type Point = readonly [timestamp: number, value: number | string];

export class PointStore {
  private readonly series = new Map<number, Map<number, number | string>>();
  private total = 0;

  insert(id: number, points: readonly Point[]): void {
    let map = this.series.get(id);
    if (map) this.series.delete(id); // re-inserted: now the most recently written
    map ??= new Map();
    this.series.set(id, map);
    for (const [ts, value] of points) {
      if (!map.has(ts)) this.total++;
      map.set(ts, value);
    }
    while (this.total > MAX_POINTS && this.series.size > 1) {
      const [oldest, points] = this.series.entries().next().value as [number, Map<number, number | string>];
      this.total -= points.size;
      this.series.delete(oldest);
    }
  }

  /** Inserted points with start <= timestamp < end, oldest first. */
  range(id: number, start: number, end: number): Point[] {
    const map = this.series.get(id);
    if (!map) return [];
    const out: Point[] = [];
    for (const [ts, value] of map) if (ts >= start && ts < end) out.push([ts, value]);
    return out.sort((a, b) => a[0] - b[0]);
  }

  /** Deletes the points with start <= timestamp < end. */
  delete(id: number, start: number, end: number): void {
    const map = this.series.get(id);
    if (!map) return;
    for (const ts of [...map.keys()]) {
      if (ts >= start && ts < end) {
        map.delete(ts);
        this.total--;
      }
    }
  }

  forget(id: number): void {
    const map = this.series.get(id);
    if (!map) return;
    this.total -= map.size;
    this.series.delete(id);
  }

  clear(): void {
    this.series.clear();
    this.total = 0;
  }
}
