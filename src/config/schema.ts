/**
 * A small declarative schema for the gateway's YAML. Hand-rolled rather than a JSON-schema library so
 * every error reads `limits[0].rate: expected a number > 0, got "fast"` (the config key, the value, the
 * expectation), which is what an operator needs at start-up, and so defaults stay in config/default.yaml.
 */
import { ConfigError } from './error.js';

type Check = (value: unknown, path: string) => unknown;

const show = (value: unknown): string => (value === undefined ? 'nothing' : JSON.stringify(value));
const fail = (path: string, expected: string, value: unknown): never => {
  throw new ConfigError(`${path}: expected ${expected}, got ${show(value)}`);
};

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

export function list(item: Check, opts: { nonEmpty?: boolean } = {}): Check {
  return (value, path) => {
    if (!Array.isArray(value)) return fail(path, opts.nonEmpty ? 'a non-empty list' : 'a list', value);
    if (opts.nonEmpty && value.length === 0) return fail(path, 'a non-empty list', value);
    return value.map((v, i) => item(v, `${path}[${i}]`));
  };
}

/** A string or a list of strings, always read as a list. */
export function oneOrMany(item: Check): Check {
  const many = list(item, { nonEmpty: true });
  return (value, path) => (typeof value === 'string' ? [item(value, path)] : many(value, path));
}

export function obj(fields: Record<string, Check>): Check {
  return (value, path) => {
    if (value === null || typeof value !== 'object' || Array.isArray(value))
      return fail(path || 'config', 'a mapping', value);
    const input = value as Record<string, unknown>;
    for (const key of Object.keys(input)) {
      if (!(key in fields)) {
        throw new ConfigError(
          `${path ? `${path}.` : ''}${key}: unknown key (expected one of ${Object.keys(fields).join(', ')})`,
        );
      }
    }
    const out: Record<string, unknown> = {};
    for (const [key, check] of Object.entries(fields)) out[key] = check(input[key], path ? `${path}.${key}` : key);
    return out;
  };
}
