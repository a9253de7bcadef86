/**
 * Path patterns over the part of a CDF path after /api/v1/projects/{project}: `*` is one segment's worth
 * of characters, `**` any number of segments. Compiled once at start-up; matched on every request.
 */
export interface PathPattern {
  readonly source: string;
  /** The literal first segment, or null when the pattern starts with a glob. */
  readonly head: string | null;
  test(path: string): boolean;
}

export function compilePattern(source: string): PathPattern {
  let re = '^';
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c === '*') {
      if (source[i + 1] === '*') {
        // `/x/**` also matches `/x` itself is NOT implied: list both when both are meant.
        re += '.*';
        i++;
      } else re += '[^/]*';
    } else re += c.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
  }
  const regex = new RegExp(`${re}$`);
  const first = source.split('/')[1] ?? '';
  return { source, head: first.includes('*') ? null : first, test: (path) => regex.test(path) };
}

/** First path segment of a project-relative path, the index key for pattern lookups. */
function headSegment(rest: string): string {
  const end = rest.indexOf('/', 1);
  return end === -1 ? rest.slice(1) : rest.slice(1, end);
}

/**
 * A set of rules, each with patterns, indexed by first segment so that a request is tested only
 * against the rules that can match it.
 */
export class PatternIndex<T> {
  private readonly byHead = new Map<string, Array<{ rule: T; pattern: PathPattern; order: number }>>();
  private readonly anyHead: Array<{ rule: T; pattern: PathPattern; order: number }> = [];

  constructor(rules: readonly T[], patternsOf: (rule: T) => readonly string[]) {
    rules.forEach((rule, order) => {
      for (const source of patternsOf(rule)) {
        const pattern = compilePattern(source);
        const entry = { rule, pattern, order };
        if (pattern.head === null) this.anyHead.push(entry);
        else {
          const list = this.byHead.get(pattern.head) ?? [];
          list.push(entry);
          this.byHead.set(pattern.head, list);
        }
      }
    });
  }

  /** Every rule with a pattern matching `rest`, each once, in configuration order. */
  matchAll(rest: string): T[] {
    const hits: Array<{ rule: T; order: number }> = [];
    const consider = (entries: ReadonlyArray<{ rule: T; pattern: PathPattern; order: number }> | undefined) => {
      if (!entries) return;
      for (const e of entries) {
        if (e.pattern.test(rest) && !hits.some((h) => h.rule === e.rule)) hits.push(e);
      }
    };
    consider(this.byHead.get(headSegment(rest)));
    consider(this.anyHead);
    if (hits.length > 1) hits.sort((a, b) => a.order - b.order);
    return hits.map((h) => h.rule);
  }

  /** The first rule (in configuration order) with a pattern matching `rest`. */
  matchFirst(rest: string): T | undefined {
    return this.matchAll(rest)[0];
  }
}
