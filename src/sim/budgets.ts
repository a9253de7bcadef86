import type { Classified } from './classify.js';
import type { SimLimit, SimTight } from './types.js';

/**
 * One budget of CDF's limit tree, as the simulator enforces it: a level (API, CRUD, Analytical,
 * Aggregation, or an endpoint of its own) with a project-wide and a per-identity bucket.
 */
export interface SimBudget {
  /** Unique; the key of its buckets and the name in the simulator's stats. */
  name: string;
  project: SimLimit | null;
  identity: SimLimit | null;
  /** Rate 429s name the figure ("maximum number='30' of requests per second"); otherwise they name none. */
  statesRate: boolean;
  /** The budget's own choice, over the options' `figures` (a `tight` budget's). */
  figures?: SimTight['figures'];
}

/** A level of the documented tree and which requests spend it. */
export interface TreeLevel extends SimBudget {
  /** Deeper levels are checked first (CDF checks an endpoint's own budget before the shared one). */
  depth: number;
  applies(c: Classified): boolean;
}

const UNLIMITED = Number.POSITIVE_INFINITY;
/** rate/s (burst = rate, CDF's one-second budget) and concurrent requests; null = not published (unlimited here). */
function lim(rate: number | null, concurrency: number | null): SimLimit {
  const r = rate ?? UNLIMITED;
  return { rate: r, burst: r, concurrency: concurrency ?? UNLIMITED };
}

const isClass =
  (api: string, ...classes: Array<'crud' | 'analytical' | 'aggregate'>) =>
  (c: Classified) =>
    // Aggregation is a sub-budget of Analytical: an aggregate call spends both.
    c.api === api &&
    c.cls !== undefined &&
    (classes.includes(c.cls) || (c.cls === 'aggregate' && classes.includes('analytical')));
const isApi = (api: string) => (c: Classified) => c.api === api;
const isOp =
  (api: string, ...ops: string[]) =>
  (c: Classified) =>
    c.api === api && ops.includes(c.op);

function level(
  name: string,
  depth: number,
  applies: (c: Classified) => boolean,
  project: SimLimit | null,
  identity: SimLimit | null,
): TreeLevel {
  return { name, depth, applies, project, identity, statesRate: false };
}

/**
 * The figures CDF publishes (docs/cdf-limits.md has each one with its source). Only published figures are
 * here: an API or level CDF publishes nothing for is not limited by the simulator (add `tight` budgets to
 * stand in for undocumented ones).
 */
export const DOCUMENTED_TREE: readonly TreeLevel[] = [
  // Assets: docs.cognite.com/api-reference/concepts/20230101/rate-limits (table "Assets").
  level('assets', 0, isApi('assets'), lim(200, 40), lim(150, 30)),
  level('assets/crud', 1, isClass('assets', 'crud'), lim(170, 30), lim(130, 23)),
  level('assets/analytical', 1, isClass('assets', 'analytical'), lim(30, 15), lim(23, 12)),
  level('assets/aggregate', 2, isClass('assets', 'aggregate'), lim(15, 7), lim(12, 5)),
  // Events: same page (table "Events"); Analytical concurrency and Aggregation are not in the part we could read.
  level('events', 0, isApi('events'), lim(200, 50), lim(150, 40)),
  level('events/crud', 1, isClass('events', 'crud'), lim(170, 40), lim(130, 30)),
  level('events/analytical', 1, isClass('events', 'analytical'), lim(30, null), lim(23, null)),
  // Files: the Files API description gives 160,000 / 120,000 items/s at 1,000 items a request, and 23
  // Analytical requests/s per identity.
  level('files', 0, isApi('files'), lim(160, null), lim(120, null)),
  level('files/analytical', 1, isClass('files', 'analytical'), null, lim(23, null)),
  // Time series and sequences: the /aggregate operations' own descriptions.
  level('timeseries/aggregate', 2, isClass('timeseries', 'aggregate'), lim(15, 6), lim(10, 4)),
  level('sequences/aggregate', 2, isClass('sequences', 'aggregate'), lim(15, 6), lim(10, 4)),
  // Records (the Records API description): ingest, and query (mutable streams) with dedicated
  // Retrieve (filter) and Aggregate budgets checked first.
  level('records/ingest', 1, isOp('records', '', 'upsert', 'delete'), lim(40, 20), lim(30, 15)),
  level('records/query', 1, isOp('records', 'filter', 'aggregate', 'sync'), lim(40, 30), lim(30, 22)),
  level('records/retrieve', 2, isOp('records', 'filter'), lim(20, 20), lim(15, 15)),
  level('records/aggregate', 2, isOp('records', 'aggregate'), lim(15, 10), lim(12, 7)),
  // Streams (the Streams API description): create and delete, retrieve and list.
  level(
    'streams/write',
    1,
    (c) => c.api === 'streams' && (c.method === 'POST' || c.method === 'DELETE'),
    lim(2, 1),
    lim(1, 1),
  ),
  level('streams/read', 1, (c) => c.api === 'streams' && c.method === 'GET', lim(5, 3), lim(3, 2)),
  // Raw (the Raw API description): concurrency only; its data-rate limits (GB / 10 min) are not modelled.
  level('raw', 0, isApi('raw'), lim(null, 64), lim(null, 48)),
  // Data modeling instances (dm_limits_and_restrictions): project-wide concurrency of apply, delete, query.
  level('instances/apply', 1, (c) => c.api === 'instances' && c.op === '' && c.method === 'POST', lim(null, 4), null),
  level('instances/delete', 1, isOp('instances', 'delete'), lim(null, 2), null),
  level('instances/query', 1, isOp('instances', 'query', 'sync'), lim(null, 8), null),
];

/** The documented tree with every figure times `scale` (concurrencies rounded, at least 1); names unchanged. */
export function scaledTree(scale: number, tree: readonly TreeLevel[] = DOCUMENTED_TREE): readonly TreeLevel[] {
  if (scale === 1) return tree;
  const times = (l: SimLimit | null): SimLimit | null =>
    l && {
      rate: l.rate * scale,
      burst: l.burst * scale,
      concurrency: l.concurrency === UNLIMITED ? UNLIMITED : Math.max(1, Math.round(l.concurrency * scale)),
    };
  return tree.map((l) => ({ ...l, project: times(l.project), identity: times(l.identity) }));
}

/** The levels a request spends, deepest first. */
export function treeLevelsOf(c: Classified, tree: readonly TreeLevel[] = DOCUMENTED_TREE): TreeLevel[] {
  return tree.filter((l) => l.applies(c)).sort((a, b) => b.depth - a.depth);
}
