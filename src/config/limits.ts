/**
 * The `limits` key: a mapping keyed by bucket name, merged over the default table (config/default.yaml; the
 * loader merges mappings key by key, so one figure can change and `null` removes a bucket), or a list, which
 * replaces the table as it always did. Either way the gateway gets one list of buckets; every bucket that
 * matches a request applies, which is what makes CDF's tree (API level, class level, per identity).
 */

import { compilePattern } from '../cdf/pattern.js';
import { ROUTES } from '../cdf/routes.generated.js';
import { ConfigError } from './error.js';
import { bool, list, nullable, num, oneOf, oneOrMany, optional, str } from './schema.js';
import type { LimitConfig } from './types.js';

type Check = (value: unknown, path: string) => unknown;

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];
export const LIMIT_NAME = /^[A-Za-z0-9_.-]+$/;
const CLASSES = ['crud', 'analytical', 'aggregate', 'other'] as const;

const pattern = str({ pattern: /^\/[^\s?#]*$/, describe: 'a path pattern starting with "/" (globs * and **)' });
const method = (value: unknown, path: string) =>
  oneOf(...METHODS)(typeof value === 'string' ? value.toUpperCase() : value, path);

/** Fields of one bucket. `name` only in the list form (the mapping's key is the name there). */
const FIELDS: Record<string, Check> = {
  match: oneOrMany(pattern),
  classes: optional(nullable(list(oneOf(...CLASSES), { nonEmpty: true })), null),
  methods: optional(nullable(list(method, { nonEmpty: true })), null),
  per: optional(oneOf('project', 'identity'), 'project'),
  rate: num({ gt: 0 }),
  burst: optional(num({ min: 1 }), undefined),
  concurrency: num({ int: true, min: 1 }),
  fallback: optional(bool, false),
};

const nameCheck = str({ pattern: LIMIT_NAME, describe: 'a name of letters, digits, "_", "." or "-"' });

/** Extra bucket fields other parts of the gateway add (e.g. `mode`): name -> check with its default. */
const extraFields: Record<string, Check> = {};

/** Lets another concern add a bucket field (with its check and default) without editing this file. */
export function addLimitField(name: string, check: Check): void {
  extraFields[name] = check;
}

function bucket(value: unknown, path: string, name: string | null): LimitConfig {
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    throw new ConfigError(`${path}: expected a mapping, got ${JSON.stringify(value)}`);
  const input = value as Record<string, unknown>;
  const fields = { ...FIELDS, ...extraFields };
  const allowed = name === null ? ['name', ...Object.keys(fields)] : Object.keys(fields);
  for (const key of Object.keys(input)) {
    if (!allowed.includes(key))
      throw new ConfigError(`${path}.${key}: unknown key (expected one of ${allowed.join(', ')})`);
  }
  const out: Record<string, unknown> = { name: name ?? nameCheck(input.name, `${path}.name`) };
  for (const [key, check] of Object.entries(fields)) out[key] = check(input[key], `${path}.${key}`);
  // No burst: a one-second bucket, as CDF's figures are per second.
  if (out.burst === undefined) out.burst = Math.max(1, out.rate as number);
  return out as unknown as LimitConfig;
}

export interface LimitsParsed {
  limits: LimitConfig[];
  /** True when `limits` was a list: it replaced the default table. */
  replaced: boolean;
}

/** Reads `limits` in either form; names must be unique. */
export function parseLimits(value: unknown): LimitsParsed {
  let limits: LimitConfig[];
  let replaced = false;
  if (Array.isArray(value)) {
    replaced = true;
    limits = value.map((v, i) => bucket(v, `limits[${i}]`, null));
    const seen = new Set<string>();
    limits.forEach((limit, i) => {
      if (seen.has(limit.name))
        throw new ConfigError(`limits[${i}].name: expected a unique name, got ${JSON.stringify(limit.name)} twice`);
      seen.add(limit.name);
    });
  } else if (value !== null && typeof value === 'object') {
    limits = [];
    for (const [key, entry] of Object.entries(value as Record<string, unknown>)) {
      if (!LIMIT_NAME.test(key))
        throw new ConfigError(`limits.${key}: expected a bucket name of letters, digits, "_", "." or "-"`);
      // null removes a bucket of the default table.
      if (entry === null) continue;
      limits.push(bucket(entry, `limits.${key}`, key));
    }
  } else {
    throw new ConfigError(
      `limits: expected a mapping of buckets by name (or a list of buckets), got ${JSON.stringify(value)}`,
    );
  }
  return { limits, replaced };
}

/** Families whose operations run on CDF's project API (not auth.cognite.com or the token endpoint). */
function projectFamilies(): Map<string, string> {
  const out = new Map<string, string>();
  for (const [, template, family] of ROUTES) {
    if (template.startsWith('/api/') || family === 'token' || out.has(family)) continue;
    out.set(family, template.replace(/\{[^}]*\}/g, 'x'));
  }
  return out;
}

/** The API families no bucket covers (not even a fallback): named in the start-up warning for a list. */
export function uncoveredFamilies(limits: readonly LimitConfig[]): string[] {
  const patterns = limits.map((l) => l.match.map(compilePattern));
  const out: string[] = [];
  for (const [family, path] of projectFamilies()) {
    if (!patterns.some((ps) => ps.some((p) => p.test(path)))) out.push(family);
  }
  return out.sort();
}

/** Start-up warnings about `limits`. */
export function limitWarnings(parsed: LimitsParsed): string[] {
  if (!parsed.replaced) return [];
  const left = uncoveredFamilies(parsed.limits);
  if (left.length === 0) return [];
  return [
    `limits: a list replaces the default table; these APIs are left without any bucket: ${left.join(', ')} ` +
      '(write limits as a mapping to change the default table instead of replacing it)',
  ];
}
