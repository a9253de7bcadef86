/**
 * The `limits` key: a mapping keyed by bucket name, merged over the default table (config/default.yaml; the
 * loader merges mappings key by key, so one figure can change and `null` removes a bucket), or a list, which
 * replaces the table as it always did. Either way the gateway gets one list of buckets; every bucket that
 * matches a request applies, which is what makes CDF's tree (API level, class level, per identity).
 */

import { compilePattern } from '../cdf/pattern.js';
import { ROUTES } from '../cdf/routes.generated.js';
import { ConfigError } from './error.js';
import { pathPattern } from './path-pattern.js';
import {
  bool,
  type Check,
  fail,
  isMapping,
  list,
  nullable,
  num,
  obj,
  oneOf,
  oneOrMany,
  optional,
  record,
  str,
} from './schema.js';
import type { FigureOrigin, FigureOrigins, LimitConfig } from './types.js';

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];
const ORIGINS = ['documented', 'configured', 'guessed'];
const origin = oneOf(...ORIGINS);
export const LIMIT_NAME = /^[A-Za-z0-9_.-]+$/;
const NAME_RULE = 'a name of letters, digits, "_", "." or "-"';
const CLASSES = ['crud', 'analytical', 'aggregate', 'other'];

const method = (value: unknown, path: string) =>
  oneOf(...METHODS)(typeof value === 'string' ? value.toUpperCase() : value, path);

/** Fields of one bucket; `name` only in the list form (the mapping's key is the name there). */
export const LIMIT_FIELDS: Record<string, Check> = {
  match: oneOrMany(pathPattern),
  classes: optional(nullable(list(oneOf(...CLASSES), { nonEmpty: true })), null),
  methods: optional(nullable(list(method, { nonEmpty: true })), null),
  per: optional(oneOf('project', 'identity'), 'project'),
  rate: num({ gt: 0 }),
  // No burst: a one-second bucket, as CDF's figures are per second (filled in by `finish`).
  burst: optional(num({ min: 1 }), null),
  concurrency: num({ int: true, min: 1 }),
  fallback: optional(bool, false),
  // shadow: counted on the side (what it would have queued or refused), never delays a call.
  mode: optional(oneOf('enforce', 'shadow'), 'enforce'),
  // Where the figures come from: one word for both, or per figure. A figure the operator wrote is configured.
  source: optional(figureOrigins, { rate: 'configured', concurrency: 'configured' }),
  probeAbove: optional(nullable(bool), null),
  perFamily: optional(bool, false),
};

function figureOrigins(value: unknown, path: string): FigureOrigins {
  if (typeof value === 'string') {
    const o = origin(value, path) as FigureOrigin;
    return { rate: o, concurrency: o };
  }
  const v = obj({ rate: optional(origin, 'configured'), concurrency: optional(origin, 'configured') })(value, path);
  return v as FigureOrigins;
}

const listEntry = obj({ name: str({ pattern: LIMIT_NAME, describe: NAME_RULE }), ...LIMIT_FIELDS });
const mapEntry = nullable(obj(LIMIT_FIELDS));
const listForm = list(listEntry);
const mapForm = record(mapEntry, { key: LIMIT_NAME, describeKey: NAME_RULE });

function finish(entry: Record<string, unknown>): LimitConfig {
  if ((entry.burst === null || entry.burst === undefined) && typeof entry.rate === 'number')
    entry.burst = Math.max(1, entry.rate);
  return entry as unknown as LimitConfig;
}

/** Both forms as the list of buckets the gateway uses; `null` entries of the mapping are dropped. */
function toList(value: unknown, mapping: boolean): LimitConfig[] {
  if (!mapping) return ((value ?? []) as unknown[]).filter(isMapping).map(finish);
  const out: LimitConfig[] = [];
  for (const [name, entry] of Object.entries((value ?? {}) as Record<string, unknown>)) {
    if (isMapping(entry)) out.push(finish({ name, ...entry }));
  }
  return out;
}

/**
 * The check for `limits`: a mapping of buckets by name (merged over the default table by the loader;
 * `null` removes one) or a list (replaces the table). Every problem is reported; the result is a list.
 */
export const limitsCheck: Check = (value, path) => {
  const mapping = isMapping(value);
  if (!mapping && !Array.isArray(value))
    return fail(path, 'a mapping of buckets by name (or a list of buckets)', value);
  try {
    return toList((mapping ? mapForm : listForm)(value, path), mapping);
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(err.issues, toList(err.partial, mapping));
    throw err;
  }
};

/**
 * A user's layer of settings with the figures it writes marked `configured`, so a figure changed over the
 * default table stops being documented or guessed (the table's other figures keep their origin). Entries
 * that say `source` themselves keep it.
 */
export function markConfigured(layer: unknown): unknown {
  if (!isMapping(layer) || !isMapping(layer.limits)) return layer;
  const limits: Record<string, unknown> = {};
  for (const [name, entry] of Object.entries(layer.limits)) {
    if (!isMapping(entry) || entry.source !== undefined) {
      limits[name] = entry;
      continue;
    }
    const source: Record<string, FigureOrigin> = {};
    if (entry.rate !== undefined || entry.burst !== undefined) source.rate = 'configured';
    if (entry.concurrency !== undefined) source.concurrency = 'configured';
    limits[name] = Object.keys(source).length > 0 ? { ...entry, source } : entry;
  }
  return { ...layer, limits };
}

/** The default table's `source: documented` as a mapping per figure, so a user's layer can change one of them. */
export function perFigureSources(layer: unknown): unknown {
  if (!isMapping(layer) || !isMapping(layer.limits)) return layer;
  const limits: Record<string, unknown> = {};
  for (const [name, entry] of Object.entries(layer.limits))
    limits[name] =
      isMapping(entry) && typeof entry.source === 'string'
        ? { ...entry, source: { rate: entry.source, concurrency: entry.source } }
        : entry;
  return { ...layer, limits };
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

/** Start-up warnings about `limits`: a list (it replaced the default table) that leaves APIs without a bucket. */
export function limitWarnings(raw: unknown, limits: readonly LimitConfig[]): string[] {
  if (!Array.isArray(raw)) return [];
  const left = uncoveredFamilies(limits);
  if (left.length === 0) return [];
  return [
    `limits: a list replaces the default table; these APIs are left without any bucket: ${left.join(', ')} ` +
      '(write limits as a mapping to change the default table instead of replacing it)',
  ];
}
