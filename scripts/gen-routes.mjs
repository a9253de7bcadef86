#!/usr/bin/env node
// Generates src/cdf/routes.generated.ts from CDF's OpenAPI description.
//
//   node scripts/gen-routes.mjs [path/to/cdf-openapi.json]   (npm run gen:routes)
//
// The spec path defaults to ../shared/cdf-openapi.json relative to the repository root; a path given on the
// command line is resolved against the current directory. Output is deterministic (sorted, no timestamps) and
// formatted the way biome formats it, so regenerating an unchanged spec gives an unchanged file.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const specPath = process.argv[2] ? resolve(process.argv[2]) : resolve(repoRoot, '..', 'shared', 'cdf-openapi.json');
const outPath = join(repoRoot, 'src', 'cdf', 'routes.generated.ts');

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const READ_ACTIONS = new Set(['READ', 'LIST']);
const PROJECT_PREFIX = '/api/v1/projects/{project}/';

/**
 * `x-capability` as a list of "acl:ACTION" strings, empty when the operation says nothing usable.
 * The spec is not uniform: a list of strings (the common case), a bare string, null or absent, a list with a
 * null in it (the null is dropped), or a list of `{ acl: "ACTION" }` / `{ acl: "acl:ACTION" }` objects.
 */
function capabilitiesOf(op) {
  const raw = op['x-capability'];
  if (raw === undefined || raw === null) return [];
  const out = [];
  for (const item of Array.isArray(raw) ? raw : [raw]) {
    if (typeof item === 'string') out.push(item);
    else if (item !== null && typeof item === 'object') {
      for (const [acl, action] of Object.entries(item)) {
        if (typeof action === 'string') out.push(action.includes(':') ? action : `${acl}:${action}`);
      }
    }
  }
  return out;
}

/** "datamodels:READ(cdf_cdm, cdf_cdm_3d)" -> "READ": the ACL action, without any scope qualifier. */
function actionOf(capability) {
  const action = capability.slice(capability.lastIndexOf(':') + 1);
  const paren = action.indexOf('(');
  return (paren === -1 ? action : action.slice(0, paren)).trim().toUpperCase();
}

/**
 * Reads: GET/HEAD/OPTIONS, or an operation whose every capability is READ or LIST. No info means write.
 * An operation named as a write (createX, updateX, deleteX, ...) is a write whatever its capability says:
 * the spec marks at least one create (POST /hostedextractors/sources) with a READ capability, and a
 * write taken for a read would be retried after a failure.
 */
const WRITE_NAMES = /^(create|update|delete|upsert|insert|remove|post|put|set|add|run|trigger|start|cancel)/i;
function isRead(method, op) {
  if (READ_METHODS.has(method)) return true;
  if (WRITE_NAMES.test(op.operationId ?? '')) return false;
  const caps = capabilitiesOf(op);
  return caps.length > 0 && caps.every((c) => READ_ACTIONS.has(actionOf(c)));
}

/**
 * CDF's operation classes (docs.cognite.com, "API rate limits"): inside an API's budget, CRUD calls (create,
 * retrieve, retrieve by ids, update, delete) and Analytical calls (list, filter, search) have budgets of
 * their own, and Aggregation has one inside Analytical. Read from the path's last segment first (CDF names its
 * operations by it: /assets/list, /assets/byids, /assets/aggregate), then from the operation id, then from
 * the shape: GET on an item is a retrieve, GET on a collection a list, POST on a collection a create.
 * Operations that are none of these (jobs, runs, calls, uploads, sessions, ...) are 'other': only buckets
 * without `classes` cover them.
 */
const AGGREGATE_SEGMENTS = new Set(['aggregate']);
const ANALYTICAL_SEGMENTS = new Set(['list', 'filter', 'search', 'query', 'sync', 'search-streaming']);
const CRUD_SEGMENTS = new Set(['byids', 'update', 'delete', 'upsert', 'latest']);
const AGGREGATE_IDS = /^aggregate/i;
const ANALYTICAL_IDS = /^(list|filter|search|query|advancedList)/i;
const CRUD_IDS = /^(create|apply|get\w*ByIds?|byIds|retrieve|update|alter|delete|upsert|ingest)|Create$/i;
/** GETs on a fixed path that read one thing about the caller or the service rather than list resources. */
const OTHER_GET_SEGMENTS = new Set(['me', 'inspect', 'status', 'statistics', 'limits', 'icon']);
function classOf(method, template, op) {
  const segs = template.split('/').filter((s) => s !== '');
  const last = segs[segs.length - 1] ?? '';
  const isParam = last.startsWith('{');
  const id = op.operationId ?? '';
  if (AGGREGATE_SEGMENTS.has(last) || AGGREGATE_IDS.test(id)) return 'aggregate';
  if (ANALYTICAL_SEGMENTS.has(last)) return 'analytical';
  if (CRUD_SEGMENTS.has(last.toLowerCase())) return 'crud';
  if (method === 'DELETE' || method === 'PUT' || method === 'PATCH') return 'crud';
  if (method === 'GET' && isParam) return 'crud';
  if (method === 'GET' && OTHER_GET_SEGMENTS.has(last)) return 'other';
  if (ANALYTICAL_IDS.test(id)) return 'analytical';
  if (CRUD_IDS.test(id)) return 'crud';
  // A collection: GET lists it, POST creates in it (/assets, /events, /streams/{streamId}/records).
  if (method === 'GET' && isCollection(segs, id)) return 'analytical';
  if (method === 'POST' && isCollection(segs, id) && /^(create|post|add|ingest|init)/i.test(id)) return 'crud';
  return 'other';
}

/** A path whose last segment names resources (a plural or a resource the operation id names). */
function isCollection(segs, id) {
  const last = segs[segs.length - 1] ?? '';
  if (last.startsWith('{')) return false;
  return /s$/i.test(last) || new RegExp(last.replace(/[^a-z0-9]/gi, ''), 'i').test(id);
}

/** A short, stable slug for the API family: metrics label and cache-invalidation scope. */
function familyOf(template) {
  let segs = template.split('/').filter((s) => s !== '');
  // Organisation/principal APIs served by auth.cognite.com are written as /api/v1/orgs/...: skip the prefix.
  if (segs[0] === 'api' && /^v\d+$/.test(segs[1] ?? '')) segs = segs.slice(2);
  const [first = '', second = ''] = segs;
  if (first === 'timeseries' && (second === 'data' || second === 'synthetic')) return 'datapoints';
  if (first === 'models') return 'datamodeling';
  if (first === 'streams') return 'records';
  const slug = first
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '')
    .slice(0, 32);
  return slug === '' ? 'other' : slug;
}

/** Where an operation is served when it is not under the project: from path- or operation-level `servers`. */
function serverOf(spec, pathItem, op) {
  const servers = op.servers ?? pathItem.servers;
  if (!Array.isArray(servers) || servers.length === 0) return null;
  const url = servers[0]?.url;
  return typeof url === 'string' && url !== spec.servers?.[0]?.url ? url : null;
}

const spec = JSON.parse(readFileSync(specPath, 'utf8'));
const title = spec.info?.title ?? 'unknown';
const version = spec.info?.version ?? 'unknown';

const rows = [];
for (const [path, pathItem] of Object.entries(spec.paths ?? {})) {
  if (pathItem === null || typeof pathItem !== 'object') continue;
  for (const m of HTTP_METHODS) {
    const op = pathItem[m];
    if (op === null || typeof op !== 'object') continue;
    const method = m.toUpperCase();
    // One operation is written with the full /api/v1/projects/{project} prefix although the server URL already
    // has it; requests for it arrive project-relative, so that is the template.
    const template = path.startsWith(PROJECT_PREFIX) ? path.slice(PROJECT_PREFIX.length - 1) : path;
    rows.push({
      method,
      template,
      family: familyOf(template),
      read: isRead(method, op),
      cls: classOf(method, template, op),
      server: serverOf(spec, pathItem, op),
    });
  }
}
rows.sort((a, b) => cmp(a.template, b.template) || cmp(a.method, b.method));

// Two operations with the same method and the same path shape (parameter names aside) could not be told apart.
const shapes = new Map();
for (const r of rows) {
  const key = `${r.method} ${r.template.replace(/\{[^}]*\}/g, '{}')}`;
  if (shapes.has(key)) throw new Error(`ambiguous routes: ${shapes.get(key)} and ${r.method} ${r.template}`);
  shapes.set(key, `${r.method} ${r.template}`);
}

const reads = rows.filter((r) => r.read).length;
const classCounts = {};
for (const r of rows) classCounts[r.cls] = (classCounts[r.cls] ?? 0) + 1;
const classSummary = Object.keys(classCounts)
  .sort(cmp)
  .map((c) => `${classCounts[c]} ${c}`)
  .join(', ');
const families = [...new Set(rows.map((r) => r.family))].sort(cmp);

const q = (s) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
const lines = rows.map((r) => {
  const fields = [q(r.method), q(r.template), q(r.family), String(r.read), q(r.cls)];
  let line = `  [${fields.join(', ')}],`;
  // Biome's line width is 120: a longer row is printed one field per line, as biome would.
  if (line.length > 120) line = `  [\n${fields.map((f) => `    ${f},\n`).join('')}  ],`;
  return r.server === null ? line : `${line} // served at ${r.server}`;
});

const out = `// Generated from CDF's OpenAPI description "${title}" version ${version} (${rows.length} operations,
// ${reads} reads, ${rows.length - reads} writes, ${families.length} families; ${classSummary})
// by scripts/gen-routes.mjs. DO NOT EDIT: regenerate with \`npm run gen:routes\`.
//
// [method, template, family, read, class]: template is relative to /api/v1/projects/{project}; read is true
// for GET/HEAD/OPTIONS and for operations whose x-capability actions are all READ or LIST; class is CDF's
// operation class for rate limits (crud, analytical, aggregate; other for operations that are none of these).

export type OperationClass = 'crud' | 'analytical' | 'aggregate' | 'other';

export const ROUTES: ReadonlyArray<
  readonly [method: string, template: string, family: string, read: boolean, cls: OperationClass]
> = [
${lines.join('\n')}
];
`;
writeFileSync(outPath, out);

console.log(
  `${relative(process.cwd(), outPath)}: ${rows.length} operations, ${reads} reads, ${rows.length - reads} writes, ` +
    `${classSummary}, ${families.length} families (${families.join(', ')})`,
);

function cmp(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}
