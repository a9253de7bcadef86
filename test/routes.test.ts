import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ROUTES } from '../src/cdf/routes.generated.js';
import { FAMILIES, lookupRoute } from '../src/cdf/routes.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const specPath = resolve(repoRoot, '..', 'shared', 'cdf-openapi.json');
const haveSpec = existsSync(specPath);

describe('lookupRoute', () => {
  it.each([
    ['POST', '/assets/list', 'assets', true, '/assets/list'],
    ['POST', '/assets', 'assets', false, '/assets'],
    ['POST', '/assets/byids', 'assets', true, '/assets/byids'],
    ['GET', '/assets/123', 'assets', true, '/assets/{id}'],
    ['POST', '/timeseries/data/list', 'datapoints', true, '/timeseries/data/list'],
    ['POST', '/timeseries/data', 'datapoints', false, '/timeseries/data'],
    ['POST', '/timeseries/list', 'timeseries', true, '/timeseries/list'],
    // The spec gives queryContent DataModelsAcl:READ only.
    ['POST', '/models/instances/query', 'datamodeling', true, '/models/instances/query'],
    ['POST', '/models/instances', 'datamodeling', false, '/models/instances'],
    ['POST', '/raw/dbs/x/tables/y/rows', 'raw', false, '/raw/dbs/{dbName}/tables/{tableName}/rows'],
    ['GET', '/raw/dbs/db1/tables/t/rows', 'raw', true, '/raw/dbs/{dbName}/tables/{tableName}/rows'],
    ['POST', '/raw/dbs/x/tables/delete', 'raw', false, '/raw/dbs/{dbName}/tables/delete'],
    ['POST', '/streams/s1/records/filter', 'records', true, '/streams/{streamId}/records/filter'],
    ['POST', '/streams/s1/records', 'records', false, '/streams/{streamId}/records'],
    ['POST', '/3d/models/list', '3d', false, null],
    ['GET', '/sessions', 'sessions', true, '/sessions'],
    ['POST', '/sessions', 'sessions', false, '/sessions'],
    // x-capability as a bare string.
    ['POST', '/transformations/byids', 'transformations', true, '/transformations/byids'],
    // No x-capability on a POST: a write, by the rule, even though it lists.
    ['POST', '/functions/list', 'functions', false, '/functions/list'],
    // The spec writes this one with the /api/v1/projects/{project} prefix; it is matched project-relative.
    ['POST', '/diagram-parsing/parsing/full', 'diagram-parsing', false, '/diagram-parsing/parsing/full'],
  ] as const)('%s %s -> %s read=%s', (method, path, family, read, template) => {
    const info = lookupRoute(method, path);
    expect(info.family).toBe(family);
    expect(info.read).toBe(read);
    if (template !== null) expect(info.template).toBe(template);
  });

  it('prefers a static segment to a parameter, and falls back to the parameter for another method', () => {
    expect(lookupRoute('POST', '/assets/list').template).toBe('/assets/list');
    expect(lookupRoute('GET', '/assets/list').template).toBe('/assets/{id}');
    expect(lookupRoute('HEAD', '/assets/7')).toMatchObject({ template: '/assets/{id}', read: true });
  });

  it('accepts lower-case methods, trailing slashes, empty segments and a query string', () => {
    expect(lookupRoute('post', '/assets/list').template).toBe('/assets/list');
    expect(lookupRoute('POST', '/assets/list/').template).toBe('/assets/list');
    expect(lookupRoute('POST', '//assets//list').template).toBe('/assets/list');
    expect(lookupRoute('POST', '/assets/list?x=1').template).toBe('/assets/list');
  });

  it('gives unknown paths a bounded family and reads by method', () => {
    expect(lookupRoute('GET', '/nosuchapi/x')).toEqual({ family: 'other', read: true, cls: 'other', template: null });
    expect(lookupRoute('POST', '/nosuchapi/x')).toEqual({ family: 'other', read: false, cls: 'other', template: null });
    // Unknown operations under a known family keep the family.
    expect(lookupRoute('POST', '/assets/frobnicate/now')).toEqual({
      family: 'assets',
      read: false,
      cls: 'other',
      template: null,
    });
    expect(lookupRoute('POST', '/timeseries/data/whatever')).toMatchObject({ family: 'datapoints', template: null });
    expect(lookupRoute('POST', '/timeseries/whatever')).toMatchObject({ family: 'timeseries', template: null });
    expect(lookupRoute('POST', '/models/whatever')).toMatchObject({ family: 'datamodeling', template: null });
    expect(lookupRoute('DELETE', '/assets/123')).toEqual({
      family: 'assets',
      read: false,
      cls: 'other',
      template: null,
    });
    expect(lookupRoute('GET', '/Assets/123').family).toBe('assets');
    expect(lookupRoute('GET', '/models').family).toBe('datamodeling');
    expect(lookupRoute('GET', '/api/v2/x').family).toBe('other');
  });

  it('does not throw on odd input', () => {
    const long = `/${'a'.repeat(100_000)}`;
    const deep = '/assets'.repeat(10_000);
    for (const path of ['', '/', '//', '///', '?', '/?', '{id}', '/{id}', '/assets/{id}', long, deep, `${long}/x`]) {
      for (const method of ['GET', 'POST', '', 'get', 'WEIRD']) {
        const info = lookupRoute(method, path);
        expect(FAMILIES).toContain(info.family);
      }
    }
    expect(lookupRoute('GET', '')).toEqual({ family: 'other', read: true, cls: 'other', template: null });
    expect(lookupRoute('POST', long).family).toBe('other');
  });

  it('only ever returns a family from FAMILIES', () => {
    expect(FAMILIES).toContain('other');
    expect([...FAMILIES].sort()).toEqual(FAMILIES);
    expect(new Set(FAMILIES).size).toBe(FAMILIES.length);
    for (const [method, template] of ROUTES) {
      const path = template.replace(/\{[^}]*\}/g, 'x1');
      const info = lookupRoute(method, path);
      expect(FAMILIES).toContain(info.family);
      expect(info.template).not.toBeNull();
    }
  });
});

describe('ROUTES', () => {
  it('matches every route to itself', () => {
    for (const [method, template, family, read, cls] of ROUTES) {
      const info = lookupRoute(method, template.replace(/\{[^}]*\}/g, 'p'));
      expect({ method, ...info }).toEqual({ method, family, read, cls, template });
    }
  });

  it('has the expected reads, writes and families', () => {
    const reads = ROUTES.filter((r) => r[3]).length;
    expect(reads).toBe(242);
    expect(ROUTES.length - reads).toBe(239);
    expect(FAMILIES.length).toBe(40); // 39 from the spec, plus 'other'
    expect(ROUTES.filter((r) => r[0] === 'GET').every((r) => r[3])).toBe(true);
  });

  it.skipIf(!haveSpec)(`has one row per operation in the spec (skipped when ${specPath} is absent)`, () => {
    const spec = JSON.parse(readFileSync(specPath, 'utf8')) as { paths: Record<string, Record<string, unknown>> };
    const methods = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
    let ops = 0;
    for (const item of Object.values(spec.paths)) for (const m of methods) if (item?.[m]) ops++;
    expect(ROUTES.length).toBe(ops);
    expect(ops).toBe(481);
  });
});

describe('operation classes (CDF rate-limit classes)', () => {
  it.each([
    ['POST', '/assets', 'crud'],
    ['GET', '/assets/7', 'crud'],
    ['POST', '/assets/byids', 'crud'],
    ['POST', '/assets/update', 'crud'],
    ['POST', '/assets/delete', 'crud'],
    ['GET', '/assets', 'analytical'],
    ['POST', '/assets/list', 'analytical'],
    ['POST', '/assets/search', 'analytical'],
    ['POST', '/assets/aggregate', 'aggregate'],
    ['POST', '/events/aggregate', 'aggregate'],
    ['POST', '/timeseries/aggregate', 'aggregate'],
    ['POST', '/streams/s1/records/aggregate', 'aggregate'],
    ['POST', '/streams/s1/records/filter', 'analytical'],
    ['POST', '/streams/s1/records/sync', 'analytical'],
    ['POST', '/streams/s1/records', 'crud'],
    ['POST', '/models/instances', 'crud'],
    ['POST', '/models/instances/query', 'analytical'],
    ['POST', '/timeseries/data/list', 'analytical'],
    ['POST', '/timeseries/data', 'crud'],
    ['POST', '/files/uploadlink', 'other'],
    ['POST', '/transformations/run', 'other'],
    ['GET', '/token/inspect', 'other'],
  ] as const)('%s %s is %s', (method, path, cls) => {
    expect(lookupRoute(method, path).cls).toBe(cls);
  });

  it('gives every operation a class, with the expected counts', () => {
    const counts: Record<string, number> = {};
    for (const r of ROUTES) counts[r[4]] = (counts[r[4]] ?? 0) + 1;
    expect(counts).toEqual({ aggregate: 12, analytical: 149, crud: 267, other: 53 });
  });

  it.skipIf(!haveSpec)('agrees with every operation id and path of the spec (481 operations)', () => {
    const spec = JSON.parse(readFileSync(specPath, 'utf8')) as {
      paths: Record<string, Record<string, { operationId?: string } | undefined>>;
    };
    const prefix = '/api/v1/projects/{project}';
    const byKey = new Map(ROUTES.map((r) => [`${r[0]} ${r[1]}`, r[4]]));
    let checked = 0;
    for (const [path, item] of Object.entries(spec.paths)) {
      for (const m of ['get', 'put', 'post', 'delete', 'patch']) {
        const op = item?.[m];
        if (!op) continue;
        const method = m.toUpperCase();
        const template = path.startsWith(`${prefix}/`) ? path.slice(prefix.length) : path;
        const cls = byKey.get(`${method} ${template}`);
        expect(cls, `${method} ${template}`).toBeDefined();
        const last = template.split('/').filter(Boolean).pop() ?? '';
        const id = op.operationId ?? '';
        // What CDF's rate-limit docs name, read off the operation: each rule must hold for every operation.
        if (last === 'aggregate' || /^aggregate/i.test(id)) expect(cls, `${method} ${template}`).toBe('aggregate');
        else if (['list', 'filter', 'search'].includes(last)) expect(cls, `${method} ${template}`).toBe('analytical');
        else if (['byids', 'byIds', 'update', 'delete'].includes(last))
          expect(cls, `${method} ${template}`).toBe('crud');
        else if (method === 'DELETE' || (method === 'GET' && last.startsWith('{')))
          expect(cls, `${method} ${template}`).toBe('crud');
        else if (/^create/i.test(id)) expect(cls, `${method} ${template}`).toBe('crud');
        checked++;
      }
    }
    expect(checked).toBe(481);
  });
});

describe('operations named as writes', () => {
  it('treats a create the spec marks READ as a write', () => {
    expect(lookupRoute('POST', '/hostedextractors/sources').read).toBe(false);
  });
});
