/**
 * A small declarative schema for the gateway's YAML. Hand-rolled rather than a JSON-schema library so
 * every error reads `limits.assets.rate: expected a number > 0, got "fast"` (the config key, the value, the
 * expectation), which is what an operator needs at start-up, and so defaults stay in config/default.yaml.
 *
 * A check is `(value, path) => validated value`, throwing a ConfigError for a bad value. `obj` and `list`
 * run every field and item and gather all their problems into one ConfigError, so a custom check only
 * has to throw for its own value.
 */
import { ConfigError } from './error.js';

export type Check = (value: unknown, path: string) => unknown;

/** A value as a message shows it: JSON, cut short when long. */
export const show = (value: unknown): string => {
  if (value === undefined) return 'nothing';
  const json = JSON.stringify(value);
  const text = Array.isArray(value) ? `a list ${json}` : json;
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
};
export const fail = (path: string, expected: string, value: unknown): never => {
  throw new ConfigError(`${path || 'config'}: expected ${expected}, got ${show(value)}`);
};
const join = (path: string, key: string) => (path ? `${path}.${key}` : key);

export function num(opts: { min?: number; gt?: number; max?: number; int?: boolean } = {}): Check {
  const parts: string[] = [];
  if (opts.gt !== undefined) parts.push(`> ${opts.gt}`);
  if (opts.min !== undefined) parts.push(`>= ${opts.min}`);
  if (opts.max !== undefined) parts.push(`<= ${opts.max}`);
  const expected = `${opts.int ? 'an integer' : 'a number'}${parts.length ? ` ${parts.join(' and ')}` : ''}`;
  return (value, path) => {
    if (typeof value !== 'number' || !Number.isFinite(value)) return fail(path, expected, value);
    if (opts.int && !Number.isInteger(value)) return fail(path, expected, value);
    if (opts.gt !== undefined && !(value > opts.gt)) return fail(path, expected, value);
    if (opts.min !== undefined && value < opts.min) return fail(path, expected, value);
    if (opts.max !== undefined && value > opts.max) return fail(path, expected, value);
    return value;
  };
}

export function str(opts: { pattern?: RegExp; describe?: string; nonEmpty?: boolean } = {}): Check {
  const expected = opts.describe ?? (opts.nonEmpty ? 'a non-empty string' : 'a string');
  return (value, path) => {
    if (typeof value !== 'string') return fail(path, expected, value);
    if (opts.nonEmpty && value.length === 0) return fail(path, expected, value);
    if (opts.pattern && !opts.pattern.test(value)) return fail(path, expected, value);
    return value;
  };
}

export function oneOf(...choices: unknown[]): Check {
  const expected = `one of ${choices.map(show).join(', ')}`;
  return (value, path) => (choices.includes(value) ? value : fail(path, expected, value));
}

export const bool: Check = (value, path) => (typeof value === 'boolean' ? value : fail(path, 'true or false', value));

export function nullable(check: Check): Check {
  return (value, path) => (value === null ? null : check(value, path));
}

export function optional(check: Check, fallback: unknown): Check {
  return (value, path) => (value === undefined ? fallback : check(value, path));
}

/** Runs `check`, adding its problems to `issues` instead of throwing; returns what it could validate. */
function attempt(check: Check, value: unknown, path: string, issues: string[]): unknown {
  try {
    return check(value, path);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    issues.push(...err.issues);
    return err.partial;
  }
}

export function list(item: Check, opts: { nonEmpty?: boolean } = {}): Check {
  return (value, path) => {
    if (!Array.isArray(value)) return fail(path, opts.nonEmpty ? 'a non-empty list' : 'a list', value);
    if (opts.nonEmpty && value.length === 0) return fail(path, 'a non-empty list', value);
    const issues: string[] = [];
    const out = value.map((v, i) => attempt(item, v, `${path}[${i}]`, issues));
    if (issues.length > 0) throw new ConfigError(issues, out);
    return out;
  };
}

/** A string or a list of strings, always read as a list. */
export function oneOrMany(item: Check): Check {
  const many = list(item, { nonEmpty: true });
  return (value, path) => (typeof value === 'string' ? [item(value, path)] : many(value, path));
}

export const isMapping = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

/** A mapping with known keys: every field is checked and every unknown key reported, all at once. */
export function obj(fields: Record<string, Check>): Check {
  const keys = Object.keys(fields);
  const expected = `a mapping of ${keys.length > 6 ? `${keys.slice(0, 6).join(', ')}, ...` : keys.join(', ')}`;
  return (value, path) => {
    if (!isMapping(value)) return fail(path, expected, value);
    const issues: string[] = [];
    for (const key of Object.keys(value)) {
      if (!(key in fields)) issues.push(`${join(path, key)}: unknown key (expected one of ${keys.join(', ')})`);
    }
    const out: Record<string, unknown> = {};
    for (const [key, check] of Object.entries(fields)) out[key] = attempt(check, value[key], join(path, key), issues);
    if (issues.length > 0) throw new ConfigError(issues, out);
    return out;
  };
}

/** A mapping with keys of the caller's choosing (e.g. bucket names), each value checked by `item`. */
export function record(item: Check, opts: { key?: RegExp; describeKey?: string } = {}): Check {
  return (value, path) => {
    if (!isMapping(value)) return fail(path, 'a mapping', value);
    const issues: string[] = [];
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) {
      if (opts.key && !opts.key.test(key))
        issues.push(`${join(path, key)}: expected a key of ${opts.describeKey ?? opts.key.source}, got ${show(key)}`);
      else out[key] = attempt(item, v, join(path, key), issues);
    }
    if (issues.length > 0) throw new ConfigError(issues, out);
    return out;
  };
}
