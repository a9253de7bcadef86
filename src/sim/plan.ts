import { type SimBudget, scaledTree, type TreeLevel, treeLevelsOf } from './budgets.js';
import { type Classified, classify } from './classify.js';
import type { SimLimit, SimOptions, SimTight } from './types.js';

interface TightBudget extends SimBudget {
  test: RegExp;
  method: string | undefined;
}

// Classifications repeat (a handful of operations per API); ids in paths do not reach the key.
const MAX_CACHED = 1000;

/**
 * Which budgets a request spends, in the order they are checked: undocumented tight endpoints first,
 * then the documented tree deepest level first, then the flat per-family limit (the outermost level).
 * Built from the options; rebuilt when they change.
 */
export class BudgetPlan {
  private readonly tight: TightBudget[];
  private readonly tree: readonly TreeLevel[];
  private readonly treeCache = new Map<string, SimBudget[]>();
  private readonly flatCache = new Map<string, SimBudget>();

  constructor(
    private readonly options: Pick<SimOptions, 'project' | 'identity' | 'tree' | 'tight'> &
      Partial<Pick<SimOptions, 'treeScale'>>,
  ) {
    this.tight = options.tight.map(tightBudget);
    this.tree = scaledTree(options.treeScale ?? 1);
  }

  /** `segments`: the path after /api/v1/projects/{project}, split on '/'. */
  budgetsOf(method: string, segments: readonly string[], c: Classified = classify(method, segments)): SimBudget[] {
    const out: SimBudget[] = [];
    if (this.tight.length > 0) {
      const path = `/${segments.join('/')}`;
      for (const t of this.tight) if ((t.method === undefined || t.method === method) && t.test.test(path)) out.push(t);
    }
    if (this.options.tree) out.push(...this.treeOf(c));
    const { project, identity } = this.options;
    if (project !== null || identity !== null) out.push(this.flatOf(segments[0] ?? '', project, identity));
    return out;
  }

  private treeOf(c: Classified): SimBudget[] {
    const key = `${c.method}\u0000${c.api}\u0000${c.op}`;
    let levels = this.treeCache.get(key);
    if (!levels) {
      levels = treeLevelsOf(c, this.tree);
      if (this.treeCache.size >= MAX_CACHED) this.treeCache.clear();
      this.treeCache.set(key, levels);
    }
    return levels;
  }

  private flatOf(family: string, project: SimLimit | null, identity: SimLimit | null): SimBudget {
    let b = this.flatCache.get(family);
    if (!b) {
      // Today's messages, figures named, so older tests and tools that read them keep working.
      b = { name: `flat/${family}`, project, identity, statesRate: true };
      if (this.flatCache.size >= MAX_CACHED) this.flatCache.clear();
      this.flatCache.set(family, b);
    }
    return b;
  }
}

function tightBudget(t: SimTight): TightBudget {
  const rate = t.rate ?? Number.POSITIVE_INFINITY;
  const limit: SimLimit = {
    rate,
    burst: t.burst ?? rate,
    concurrency: t.concurrency ?? Number.POSITIVE_INFINITY,
  };
  return {
    name: `tight${t.method ? ` ${t.method}` : ''} ${t.match}`,
    project: t.per === 'identity' ? null : limit,
    identity: t.per === 'identity' ? limit : null,
    // CDF publishes no figure for these; its rate messages name none either.
    statesRate: false,
    figures: t.figures,
    test: globToRegExp(t.match),
    method: t.method,
  };
}

/** `*` one path segment, `**` any number of segments (including none). */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  const parts = glob.split('/');
  for (let i = 1; i < parts.length; i++) {
    const part = parts[i];
    if (part === '**') re += '(?:/[^/]*)*';
    else re += `/${part.split('*').map(escapeRegExp).join('[^/]*')}`;
  }
  return new RegExp(`^${re}/?$`);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
