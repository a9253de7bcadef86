import { compilePattern, lookupRoute, PatternIndex } from '../cdf/index.js';
import { ROUTES } from '../cdf/routes.generated.js';
import type { CacheRule } from '../config/index.js';
import { ConfigError } from '../config/index.js';

/** A cache rule ready for matching: its place in the configuration and how long its answers stay fresh. */
export interface CompiledRule {
  readonly index: number;
  readonly ttlMs: number;
}

const CACHEABLE = ['GET', 'POST'] as const;

/**
 * The cache rules by method, each an index of path patterns. Built once at start-up; a rule that
 * could cache a write is refused there, with the key that names it.
 */
export class RuleTable {
  private readonly byMethod = new Map<string, PatternIndex<CompiledRule>>();

  constructor(rules: readonly CacheRule[]) {
    const perMethod = new Map<string, CompiledRule[]>();
    rules.forEach((rule, index) => {
      const key = `cache.rules[${index}].methods`;
      const compiled: CompiledRule = { index, ttlMs: rule.ttlMs };
      for (const raw of rule.methods) {
        const method = raw.toUpperCase();
        if (method !== 'GET' && method !== 'POST') {
          throw new ConfigError(`${key}: expected GET or read-only POSTs, got ${method}`);
        }
        if (method === 'POST') for (const source of rule.match) checkReadOnlyPost(key, source);
        let list = perMethod.get(method);
        if (!list) {
          list = [];
          perMethod.set(method, list);
        }
        if (!list.includes(compiled)) list.push(compiled);
      }
    });
    for (const method of CACHEABLE) {
      const list = perMethod.get(method);
      if (list && list.length > 0) {
        this.byMethod.set(method, new PatternIndex(list, (r) => rules[r.index].match));
      }
    }
  }

  get empty(): boolean {
    return this.byMethod.size === 0;
  }

  /** The first rule (in configuration order) for this method and project-relative path. */
  match(method: string, rest: string): CompiledRule | undefined {
    return this.byMethod.get(method)?.matchFirst(rest);
  }
}

/**
 * A POST pattern may only cover operations CDF's API marks as reads. A literal path is classified as a
 * request to it would be; a glob is tested against every POST operation's path template (a `*` matches a
 * `{param}` segment). A pattern that covers no known operation cannot be shown to be read-only.
 */
function checkReadOnlyPost(key: string, source: string): void {
  if (!source.includes('*')) {
    const route = lookupRoute('POST', source);
    if (route.template === null) {
      throw new ConfigError(
        `${key}: expected GET or read-only POSTs, got POST on ${JSON.stringify(source)} which is not a known read-only operation`,
      );
    }
    if (!route.read) {
      throw new ConfigError(
        `${key}: expected GET or read-only POSTs, got POST on ${JSON.stringify(source)} which writes`,
      );
    }
    return;
  }
  const pattern = compilePattern(source);
  let matched = 0;
  for (const [method, template, , read] of ROUTES) {
    if (method !== 'POST' || !pattern.test(template)) continue;
    matched++;
    if (!read) {
      throw new ConfigError(
        `${key}: expected GET or read-only POSTs, got POST on ${JSON.stringify(source)} which writes (it matches POST ${template})`,
      );
    }
  }
  if (matched === 0) {
    throw new ConfigError(
      `${key}: expected GET or read-only POSTs, got POST on ${JSON.stringify(source)} which matches no known read-only operation`,
    );
  }
}
