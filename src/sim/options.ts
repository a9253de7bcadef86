import type { Fault, SimFigures, SimLimit, SimOptions, SimRouteLatency, SimTight } from './types.js';

export const DEFAULT_OPTIONS: Readonly<SimOptions> = Object.freeze({
  host: '127.0.0.1',
  port: 0,
  latencyMs: 0,
  latency: [],
  project: null,
  identity: null,
  chargeThrottled: false,
  limiter: 'token-bucket',
  figures: Object.freeze({ rate: 'budget', concurrency: 'always' }) as SimFigures,
  statesFigures: true,
  wording: 'cdf',
  throttleBody: 'json',
  retryAfterSeconds: null,
  items: 1000,
  tree: true,
  treeScale: 1,
  tight: [],
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

function oneOf<T extends string>(value: unknown, name: string, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !allowed.includes(value as T)) {
    throw new SimInputError(`${name} must be one of ${allowed.join(', ')}`);
  }
  return value as T;
}

function objectOf(value: unknown, name: string, keys: readonly string[]): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new SimInputError(`${name} must be an object`);
  }
  const v = value as Record<string, unknown>;
  for (const key of Object.keys(v)) if (!keys.includes(key)) throw new SimInputError(`${name}: unknown key '${key}'`);
  return v;
}

/** `match` (a glob after the project) and an optional `method`, shared by `tight` and `latency` entries. */
function routeOf(v: Record<string, unknown>, name: string): { match: string; method?: string } {
  if (typeof v.match !== 'string' || !v.match.startsWith('/')) {
    throw new SimInputError(`${name}.match must be a path glob starting with '/'`);
  }
  const out: { match: string; method?: string } = { match: v.match };
  if (v.method !== undefined) {
    if (typeof v.method !== 'string') throw new SimInputError(`${name}.method must be a string`);
    out.method = v.method.toUpperCase();
  }
  return out;
}

const TIGHT_KEYS = ['match', 'method', 'rate', 'burst', 'concurrency', 'per', 'figures'];
const STATED = ['always', 'never'] as const;

export function toTight(value: unknown, name: string): SimTight {
  const v = objectOf(value, name, TIGHT_KEYS);
  const out: SimTight = routeOf(v, name);
  for (const key of ['rate', 'burst', 'concurrency'] as const) {
    const n = optionalNonNegative(v[key], `${name}.${key}`);
    if (n !== undefined) out[key] = n;
  }
  if (v.per !== undefined) {
    if (v.per !== 'project' && v.per !== 'identity') throw new SimInputError(`${name}.per must be project or identity`);
    out.per = v.per;
  }
  if (v.figures !== undefined) {
    const f = objectOf(v.figures, `${name}.figures`, ['rate', 'concurrency']);
    out.figures = {};
    if (f.rate !== undefined) out.figures.rate = oneOf(f.rate, `${name}.figures.rate`, STATED);
    if (f.concurrency !== undefined)
      out.figures.concurrency = oneOf(f.concurrency, `${name}.figures.concurrency`, STATED);
  }
  return out;
}

export function toRouteLatency(value: unknown, name: string): SimRouteLatency {
  const v = objectOf(value, name, ['match', 'method', 'ms']);
  return { ...routeOf(v, name), ms: nonNegative(v.ms, `${name}.ms`) };
}

/** A partial `figures` is laid over the defaults: `{ concurrency: 'never' }` keeps rate as each budget has it. */
function toFigures(value: unknown): SimFigures {
  const f = objectOf(value, 'figures', ['rate', 'concurrency']);
  const d = DEFAULT_OPTIONS.figures;
  return {
    rate: f.rate === undefined ? d.rate : oneOf(f.rate, 'figures.rate', ['budget', 'always', 'never'] as const),
    concurrency: f.concurrency === undefined ? d.concurrency : oneOf(f.concurrency, 'figures.concurrency', STATED),
  };
}

/** `/assets/byids=10/4` (10/s, 4 concurrent), `/assets/byids=10` or `/assets/byids=/4`; the CLI's --tight. */
export function parseTight(spec: string): SimTight {
  const eq = spec.lastIndexOf('=');
  if (eq <= 0) throw new SimInputError(`--tight expects PATH=RATE/CONCURRENCY, e.g. /assets/byids=10/4; got '${spec}'`);
  const [rate, concurrency, ...extra] = spec.slice(eq + 1).split('/');
  const num = (raw: string | undefined, what: string) => {
    if (raw === undefined || raw.trim() === '') return undefined;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < 0)
      throw new SimInputError(`--tight ${what} must be a non-negative number; got '${raw}'`);
    return n;
  };
  if (extra.length > 0) throw new SimInputError(`--tight expects PATH=RATE/CONCURRENCY; got '${spec}'`);
  return toTight(
    { match: spec.slice(0, eq), rate: num(rate, 'rate'), concurrency: num(concurrency, 'concurrency') },
    '--tight',
  );
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
      case 'latency':
        if (!Array.isArray(value)) throw new SimInputError('latency must be a list');
        out.latency = value.map((l, i) => toRouteLatency(l, `latency[${i}]`));
        break;
      case 'limiter':
        out.limiter = oneOf(value, 'limiter', ['token-bucket', 'fixed-window', 'sliding-window'] as const);
        break;
      case 'figures':
        out.figures = toFigures(value);
        break;
      case 'wording':
        out.wording = oneOf(value, 'wording', ['cdf', 'alternate'] as const);
        break;
      case 'throttleBody':
        out.throttleBody = oneOf(value, 'throttleBody', ['json', 'text', 'large-json'] as const);
        break;
      case 'treeScale': {
        const n = nonNegative(value, 'treeScale');
        if (n === 0 || !Number.isFinite(n)) throw new SimInputError('treeScale must be a positive number');
        out.treeScale = n;
        break;
      }
      case 'project':
      case 'identity':
        out[key] = toLimit(value, key);
        break;
      case 'chargeThrottled':
      case 'statesFigures':
        if (typeof value !== 'boolean') throw new SimInputError(`${key} must be a boolean`);
        out[key] = value;
        break;
      case 'retryAfterSeconds':
        out.retryAfterSeconds = value === null ? null : nonNegative(value, 'retryAfterSeconds');
        break;
      case 'tree':
        if (typeof value !== 'boolean') throw new SimInputError('tree must be a boolean');
        out.tree = value;
        break;
      case 'tight':
        if (!Array.isArray(value)) throw new SimInputError('tight must be a list');
        out.tight = value.map((t, i) => toTight(t, `tight[${i}]`));
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
