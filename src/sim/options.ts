import type { Fault, SimLimit, SimOptions } from './types.js';

export const DEFAULT_OPTIONS: Readonly<SimOptions> = Object.freeze({
  host: '127.0.0.1',
  port: 0,
  latencyMs: 0,
  project: null,
  identity: null,
  chargeThrottled: false,
  retryAfterSeconds: null,
  items: 1000,
});

/** Thrown for option or fault values that came from outside (CLI, HTTP control API, callers). */
export class SimInputError extends Error {
  override name = 'SimInputError';
}

function nonNegative(value: unknown, name: string): number {
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0) {
    throw new SimInputError(`${name} must be a non-negative number`);
  }
  return value;
}

function optionalNonNegative(value: unknown, name: string): number | undefined {
  // JSON has no Infinity: null (or absent) inside a limit means "unlimited" in that dimension.
  return value === undefined || value === null ? undefined : nonNegative(value, name);
}

/** Missing fields are unlimited, except burst which defaults to the rate (a one-second bucket). */
export function toLimit(value: unknown, name: string): SimLimit | null {
  if (value === null) return null;
  if (typeof value !== 'object' || Array.isArray(value)) throw new SimInputError(`${name} must be an object or null`);
  const v = value as Record<string, unknown>;
  const rate = optionalNonNegative(v.rate, `${name}.rate`) ?? Number.POSITIVE_INFINITY;
  const burst = optionalNonNegative(v.burst, `${name}.burst`) ?? rate;
  const concurrency = optionalNonNegative(v.concurrency, `${name}.concurrency`) ?? Number.POSITIVE_INFINITY;
  return { rate, burst, concurrency };
}

/** Validates a Partial<SimOptions> from an untrusted source; unknown keys are an error so typos do not pass silently. */
export function checkOptions(input: unknown): Partial<SimOptions> {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new SimInputError('options must be a JSON object');
  }
  const out: Partial<SimOptions> = {};
  for (const [key, value] of Object.entries(input)) {
    if (value === undefined) continue;
    switch (key) {
      case 'host':
        if (typeof value !== 'string') throw new SimInputError('host must be a string');
        out.host = value;
        break;
      case 'port':
        out.port = nonNegative(value, 'port');
        break;
      case 'latencyMs':
        out.latencyMs = nonNegative(value, 'latencyMs');
        break;
      case 'project':
      case 'identity':
        out[key] = toLimit(value, key);
        break;
      case 'chargeThrottled':
        if (typeof value !== 'boolean') throw new SimInputError('chargeThrottled must be a boolean');
        out.chargeThrottled = value;
        break;
      case 'retryAfterSeconds':
        out.retryAfterSeconds = value === null ? null : nonNegative(value, 'retryAfterSeconds');
        break;
      case 'items': {
        const n = nonNegative(value, 'items');
        if (!Number.isInteger(n)) throw new SimInputError('items must be an integer');
        out.items = n;
        break;
      }
      default:
        throw new SimInputError(`unknown option '${key}'`);
    }
  }
  return out;
}

export function checkFault(input: unknown): Fault {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new SimInputError('fault must be a JSON object');
  }
  const f = input as Record<string, unknown>;
  const count = f.count ?? 1;
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 1) {
    throw new SimInputError('fault.count must be a positive integer');
  }
  const fault: Fault = { count };
  for (const key of ['match', 'method', 'retryAfter'] as const) {
    if (f[key] === undefined) continue;
    if (typeof f[key] !== 'string') throw new SimInputError(`fault.${key} must be a string`);
    fault[key] = f[key];
  }
  for (const key of ['reset', 'autoRetryable', 'afterHeaders'] as const) {
    if (f[key] === undefined) continue;
    if (typeof f[key] !== 'boolean') throw new SimInputError(`fault.${key} must be a boolean`);
    fault[key] = f[key];
  }
  if (f.status !== undefined) {
    const s = f.status;
    if (typeof s !== 'number' || !Number.isInteger(s) || s < 100 || s > 599) {
      throw new SimInputError('fault.status must be an HTTP status code');
    }
    fault.status = s;
  }
  if (f.delayMs !== undefined) fault.delayMs = nonNegative(f.delayMs, 'fault.delayMs');
  if (fault.status === undefined && !fault.reset && !fault.delayMs) {
    throw new SimInputError('fault needs status, reset or delayMs');
  }
  return fault;
}
