import type { Fault } from './types.js';

interface Pending {
  fault: Fault;
  left: number;
  method: string | undefined;
}

/** Faults in injection order; the first one matching a call is used and counts down. */
export class FaultQueue {
  private pending: Pending[] = [];

  add(fault: Fault): void {
    this.pending.push({ fault: { ...fault }, left: fault.count, method: fault.method?.toUpperCase() });
  }

  take(method: string, path: string): Fault | undefined {
    if (this.pending.length === 0) return undefined;
    for (let i = 0; i < this.pending.length; i++) {
      const p = this.pending[i];
      if (p.method !== undefined && p.method !== method) continue;
      if (p.fault.match !== undefined && !path.includes(p.fault.match)) continue;
      if (--p.left <= 0) this.pending.splice(i, 1);
      return p.fault;
    }
    return undefined;
  }

  clear(): void {
    this.pending = [];
  }
}
