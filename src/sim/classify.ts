/**
 * How CDF itself sorts a request into its budgets: which API it belongs to and which operation class it is.
 * The simulator's own rules, written from CDF's docs and deliberately independent of the gateway's route
 * table, so a gateway that classifies an operation wrongly is caught by a 429 here.
 *
 * CRUD: create, retrieve (GET /{id}), byids, update, delete, upsert, and a function call (it creates a call
 * object). Analytical: list (GET on the collection, /list, /filter), search, query, sync. Aggregation:
 * /aggregate (an Analytical sub-budget).
 */
export type OpClass = 'crud' | 'analytical' | 'aggregate';

export interface Classified {
  /** The API the request spends: assets, events, files, timeseries, datapoints, records, streams, raw, instances, ... */
  api: string;
  /** Undefined when the operation is none of the classes (only the API level applies). */
  cls: OpClass | undefined;
  /** The operation's own name: '' for the collection, '{id}' for one item, else the last keyword (byids, aggregate, ...). */
  op: string;
  method: string;
}

const ANALYTICAL = new Set(['list', 'filter', 'search', 'query', 'sync']);
const CRUD = new Set(['byids', 'update', 'delete', 'upsert', 'call']);
// Collections inside an item (a function's calls): GET lists them, POST creates in them.
const COLLECTIONS = new Set(['calls']);
const KEYWORDS = new Set([...ANALYTICAL, ...CRUD, ...COLLECTIONS, 'aggregate', 'data', 'latest', 'rows', 'records']);

/** `segments` is the path after /api/v1/projects/{project}, split on '/': ['assets', 'byids']. */
export function classify(method: string, segments: readonly string[]): Classified {
  const first = segments[0] ?? '';
  let api = first;
  let rest = segments.slice(1);
  // Sub-APIs CDF budgets apart from their parent path.
  if (first === 'timeseries' && (segments[1] === 'data' || segments[1] === 'synthetic')) {
    api = 'datapoints';
    rest = segments.slice(2);
  } else if (first === 'sequences' && segments[1] === 'data') {
    api = 'sequencerows';
    rest = segments.slice(2);
  } else if (first === 'streams' && segments[2] === 'records') {
    api = 'records';
    rest = segments.slice(3);
  } else if (first === 'models' && segments[1] === 'instances') {
    api = 'instances';
    rest = segments.slice(2);
  }
  const last = rest.length === 0 ? '' : rest[rest.length - 1];
  const op = rest.length === 0 ? '' : KEYWORDS.has(last) ? last : '{id}';
  return { api, cls: classOf(method, op), op, method };
}

function classOf(method: string, op: string): OpClass | undefined {
  if (op === '' || COLLECTIONS.has(op)) return method === 'GET' ? 'analytical' : method === 'POST' ? 'crud' : undefined;
  if (op === '{id}') return method === 'GET' || method === 'DELETE' ? 'crud' : undefined;
  if (op === 'aggregate') return 'aggregate';
  if (ANALYTICAL.has(op)) return 'analytical';
  if (CRUD.has(op)) return 'crud';
  return undefined;
}
