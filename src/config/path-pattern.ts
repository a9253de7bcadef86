/**
 * The check for a path pattern (`match` of limits, cache rules and version routes). Besides the shape,
 * it refuses patterns that can never match a CDF path, which would otherwise be accepted and silently
 * never apply: the full `/api/v1/projects/...` path, `***`, `**` inside a segment, `{id}` templates,
 * empty segments, and a first segment one letter away from a CDF API's (`/asset/**`).
 */
import { ROUTES } from '../cdf/routes.generated.js';
import { ConfigError } from './error.js';
import { type Check, fail } from './schema.js';

const EXPECTED = 'a path pattern starting with "/" (globs * and **)';
const PROJECT_PREFIX = /^\/api\/v\d+\/projects\/[^/]*(?=\/|$)/;

/** First segments of CDF's project paths (from the OpenAPI description). */
const HEADS: ReadonlySet<string> = new Set(
  ROUTES.filter(([, template]) => !template.startsWith('/api/')).map(([, template]) => template.split('/')[1]),
);

function nearHead(head: string): string | undefined {
  if (head === '' || head.includes('*') || HEADS.has(head)) return undefined;
  const lower = head.toLowerCase();
  for (const known of HEADS) {
    if (known === lower || known === `${lower}s` || `${known}s` === lower || known === lower.replace(/-/g, ''))
      return known;
  }
  return undefined;
}

const never = (path: string, value: string, why: string, fix?: string): never => {
  throw new ConfigError(
    `${path}: ${JSON.stringify(value)} can never match a CDF path: ${why}${fix ? `; write ${JSON.stringify(fix)}` : ''}`,
  );
};

export const pathPattern: Check = (value, path) => {
  if (typeof value !== 'string' || !/^\/[^\s?#]*$/.test(value)) return fail(path, EXPECTED, value);
  const prefix = PROJECT_PREFIX.exec(value);
  if (prefix || value.startsWith('/api/v1/'))
    never(
      path,
      value,
      'patterns apply to the path after /api/v1/projects/{project}',
      prefix ? value.slice(prefix[0].length) || '/' : undefined,
    );
  if (value === '/') return value;
  const segments = value.slice(1).split('/');
  if (segments.some((s) => s === ''))
    never(path, value, 'it has an empty segment', `/${segments.filter((s) => s !== '').join('/')}`);
  const fixed = segments.map((s) => (s.includes('**') ? '**' : s.replace(/\{[^}]*\}/g, '*')));
  const near = nearHead(segments[0]);
  if (near !== undefined) fixed[0] = near;
  const fix = `/${fixed.join('/')}`;
  if (segments.some((s) => /\*{3,}/.test(s)))
    never(path, value, '"*" is one segment and "**" any number of segments; "***" means neither', fix);
  if (segments.some((s) => s.includes('**') && s !== '**'))
    never(path, value, '"**" stands for whole segments only', fix);
  if (segments.some((s) => /[{}]/.test(s))) never(path, value, 'a path parameter such as {id} is written "*"', fix);
  if (near !== undefined) never(path, value, `CDF has no API "/${segments[0]}"`, fix);
  return value;
};
