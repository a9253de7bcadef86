/**
 * The APIs the learning benchmark's apps call, through the official @cognite/sdk straight to the simulator:
 * data sets, labels, relationships, sequences and function calls in CDF's shapes; the classes the
 * simulator gives them; per-route latency and per-operation counters.
 */
import * as sdk from '@cognite/sdk';
import { afterEach, describe, expect, it } from 'vitest';
import { classify } from '../src/sim/classify.js';
import { type SimOptions, type Simulator, startSimulator } from '../src/sim/index.js';
import { operationKey } from '../src/sim/stats.js';

// The SDK's typings do not resolve under NodeNext (see src/demo/scenario.ts): the calls are typed loosely.
// biome-ignore lint/suspicious/noExplicitAny: the SDK's own typings are not usable here
type Client = any;
const CogniteClient = (sdk as unknown as { CogniteClient: new (options: Record<string, unknown>) => Client })
  .CogniteClient;

const PROJECT = 'apis';
const P = `/api/v1/projects/${PROJECT}`;

let sim: Simulator | undefined;
afterEach(async () => {
  await sim?.close();
  sim = undefined;
});

async function start(options: Partial<SimOptions> = {}): Promise<{ s: Simulator; client: Client }> {
  sim = await startSimulator({ items: 50, ...options });
  const client = new CogniteClient({
    appId: 'apis-test',
    project: PROJECT,
    baseUrl: sim.url,
    oidcTokenProvider: async () => 'a-token',
  });
  await client.authenticate();
  return { s: sim, client };
}

/** What the SDK threw (its CogniteError carries the status and CDF's `missing` / `duplicated`). */
async function refusal(
  promise: Promise<unknown>,
): Promise<{ status: number; missing?: unknown[]; duplicated?: unknown[] }> {
  try {
    await promise;
  } catch (err) {
    return err as { status: number };
  }
  throw new Error('expected the call to fail');
}

describe('more APIs, in CDF shapes, through the SDK', () => {
  it('data sets: create, list, retrieve by ids, GET one', async () => {
    const { s, client } = await start();
    const [made] = await client.datasets.create([{ externalId: 'ds-new', name: 'New data set' }]);
    expect(made).toMatchObject({ externalId: 'ds-new', name: 'New data set' });
    expect(made.id).toBeTypeOf('number');
    const page = await client.datasets.list({ limit: 10 });
    expect(page.items.map((d: { id: number }) => d.id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(page.items[0]).toMatchObject({ externalId: 'dataset-1', name: 'Data set 1', writeProtected: false });
    const found = await client.datasets.retrieve([{ id: 2 }, { externalId: 'ds-new' }]);
    expect(found.map((d: { externalId: string }) => d.externalId)).toEqual(['dataset-2', 'ds-new']);
    expect((await refusal(client.datasets.retrieve([{ id: 999 }]))).missing).toEqual([{ id: 999 }]);
    const one = (await client.get(`${P}/datasets/3`)).data;
    expect(one.externalId).toBe('dataset-3');
    expect(s.stats().byClass).toMatchObject({ 'datasets/crud': { calls: 4, ok: 3, throttled: 0 } });
  });

  it('labels: create (409 on a duplicate), list, delete; known by externalId alone', async () => {
    const { client } = await start();
    const made = await client.labels.create([{ externalId: 'pump', name: 'Pump' }]);
    expect(made[0]).toMatchObject({ externalId: 'pump', name: 'Pump' });
    expect(made[0].id).toBeUndefined();
    expect((await refusal(client.labels.create([{ externalId: 'pump', name: 'Again' }]))).duplicated).toEqual([
      { externalId: 'pump' },
    ]);
    const page = await client.labels.list({ limit: 3 });
    expect(page.items.map((l: { externalId: string }) => l.externalId)).toEqual(['label-1', 'label-2', 'label-3']);
    expect(page.items[0].id).toBeUndefined();
    // Created ones follow the generated ones, on a page of their own.
    const all = await client.labels.list({ limit: 1000 }).autoPagingToArray({ limit: 1000 });
    expect(all).toHaveLength(51);
    expect(all.at(-1).externalId).toBe('pump');
    await client.labels.delete([{ externalId: 'pump' }, { externalId: 'label-2' }]);
    const after = await client.labels.list({ limit: 1000 }).autoPagingToArray({ limit: 1000 });
    expect(after.map((l: { externalId: string }) => l.externalId)).not.toContain('pump');
    expect(after).toHaveLength(49);
  });

  it('relationships: create, list, retrieve and delete by externalId', async () => {
    const { client } = await start();
    const made = await client.relationships.create([
      {
        externalId: 'r-new',
        sourceExternalId: 'asset-1',
        sourceType: 'asset',
        targetExternalId: 'event-1',
        targetType: 'event',
      },
    ]);
    expect(made[0]).toMatchObject({ externalId: 'r-new', sourceType: 'asset', targetType: 'event' });
    const page = await client.relationships.list({ limit: 2 });
    expect(page.items[0]).toMatchObject({
      externalId: 'relationship-1',
      sourceExternalId: 'asset-1',
      targetType: 'timeSeries',
    });
    const found = await client.relationships.retrieve([{ externalId: 'r-new' }, { externalId: 'relationship-7' }]);
    expect(found.map((r: { externalId: string }) => r.externalId)).toEqual(['r-new', 'relationship-7']);
    await client.relationships.delete([{ externalId: 'r-new' }]);
    expect((await refusal(client.relationships.retrieve([{ externalId: 'r-new' }]))).status).toBe(400);
  });

  it('sequences: create, list, retrieve by ids, delete', async () => {
    const { client } = await start();
    const [made] = await client.sequences.create([
      { externalId: 'curve-x', name: 'Curve X', columns: [{ externalId: 'flow', valueType: 'DOUBLE' }] },
    ]);
    expect(made).toMatchObject({ externalId: 'curve-x' });
    const page = await client.sequences.list({ limit: 5 });
    expect(page.items).toHaveLength(5);
    expect(page.items[0].columns.map((c: { externalId: string }) => c.externalId)).toEqual(['flow', 'head']);
    const found = await client.sequences.retrieve([{ id: made.id }, { externalId: 'sequence-4' }]);
    expect(found.map((q: { externalId: string }) => q.externalId)).toEqual(['curve-x', 'sequence-4']);
    await client.sequences.delete([{ id: made.id }]);
    expect((await refusal(client.sequences.retrieve([{ id: made.id }]))).missing).toEqual([{ id: made.id }]);
  });

  it('function calls answer the finished call after the route latency and are read back', async () => {
    const { s, client } = await start({ latency: [{ match: '/functions/*/call', method: 'POST', ms: 300 }] });
    const res = await client.post(`${P}/functions/7/call`, { data: { data: { x: 1 } } });
    expect(res.status).toBe(201);
    const called = res.data;
    expect(called).toMatchObject({ status: 'Completed', functionId: 7 });
    // The call's run time is the route latency the simulator held it for.
    expect(called.endTime - called.startTime).toBe(300);
    const again = await client.get(`${P}/functions/7/calls/${called.id}`);
    expect(again.data).toEqual(called);
    expect((await refusal(client.get(`${P}/functions/8/calls/${called.id}`))).status).toBe(400);
    expect(s.stats().byOperation).toMatchObject({
      'POST /functions/{id}/call': { calls: 1, ok: 1, throttled: 0 },
      'GET /functions/{id}/calls/{id}': { calls: 2, ok: 1, throttled: 0 },
    });
  });
});

describe('classes and operations', () => {
  it.each([
    ['POST', 'datasets', 'datasets', 'crud'],
    ['POST', 'datasets/list', 'datasets', 'analytical'],
    ['POST', 'datasets/byids', 'datasets', 'crud'],
    ['GET', 'datasets/3', 'datasets', 'crud'],
    ['POST', 'datasets/aggregate', 'datasets', 'aggregate'],
    ['POST', 'labels', 'labels', 'crud'],
    ['POST', 'labels/list', 'labels', 'analytical'],
    ['POST', 'labels/delete', 'labels', 'crud'],
    ['POST', 'relationships/byids', 'relationships', 'crud'],
    ['POST', 'relationships/list', 'relationships', 'analytical'],
    ['POST', 'sequences/search', 'sequences', 'analytical'],
    ['POST', 'sequences/update', 'sequences', 'crud'],
    ['POST', 'functions/1/call', 'functions', 'crud'],
    ['GET', 'functions/1/calls/9', 'functions', 'crud'],
    ['GET', 'functions/1/calls', 'functions', 'analytical'],
    ['POST', 'functions/1/calls/list', 'functions', 'analytical'],
  ])('%s /%s is %s %s', (method, path, api, cls) => {
    expect(classify(method, path.split('/'))).toMatchObject({ api, cls });
  });

  it.each([
    ['POST', 'timeseries/data', 'POST /timeseries/data'],
    ['GET', 'assets/12345', 'GET /assets/{id}'],
    ['POST', 'functions/42/call', 'POST /functions/{id}/call'],
    ['GET', 'functions/42/calls/7', 'GET /functions/{id}/calls/{id}'],
    ['POST', 'raw/dbs/my-db/tables/t-1/rows', 'POST /raw/dbs/{id}/tables/{id}/rows'],
    ['GET', 'raw/dbs/rows/tables/rows/rows', 'GET /raw/dbs/{id}/tables/{id}/rows'],
    ['POST', 'streams/s1/records/filter', 'POST /streams/{id}/records/filter'],
  ])('%s /%s counts as %s', (method, path, key) => {
    expect(operationKey(method, path.split('/'))).toBe(key);
  });

  it('counts calls, ok and throttled per operation, ids replaced; ?requests=0 leaves out the last requests', async () => {
    const { s } = await start({ tight: [{ match: '/assets/byids', rate: 0.01, burst: 2 }] });
    const call = (method: string, path: string, body?: unknown) =>
      fetch(s.url + P + path, {
        method,
        headers: { authorization: 'Bearer a-token' },
        body: body === undefined ? undefined : JSON.stringify(body),
      }).then((r) => r.status);
    for (let i = 1; i <= 3; i++) expect(await call('GET', `/assets/${i}`)).toBe(200);
    const byids = [];
    for (let i = 1; i <= 4; i++) byids.push(await call('POST', '/assets/byids', { items: [{ id: i }] }));
    expect(byids).toEqual([200, 200, 429, 429]);
    expect(await call('POST', '/assets/byids', { items: [{ id: 9999 }] })).toBe(429);
    const stats = (await (await fetch(`${s.url}/_sim/stats?requests=0`)).json()) as {
      byOperation: Record<string, unknown>;
      requests: unknown[];
    };
    expect(stats.requests).toEqual([]);
    expect(stats.byOperation).toEqual({
      'GET /assets/{id}': { calls: 3, ok: 3, throttled: 0 },
      'POST /assets/byids': { calls: 5, ok: 2, throttled: 3 },
    });
    expect(s.stats().requests.length).toBeGreaterThan(0);
    s.reset();
    expect(s.stats().byOperation).toEqual({});
  });
});

describe('per-route latency', () => {
  it('holds the matching calls (and their slots) that long, others answer at latencyMs', async () => {
    const { s } = await start({
      latency: [{ match: '/functions/*/call', method: 'POST', ms: 2000 }],
      tight: [{ match: '/functions/**', concurrency: 1 }],
    });
    const order: string[] = [];
    const call = (name: string, method: string, path: string) =>
      fetch(s.url + P + path, {
        method,
        headers: { authorization: 'Bearer a-token' },
        body: method === 'POST' ? '{}' : undefined,
      }).then((r) => {
        order.push(`${name} ${r.status}`);
      });
    await Promise.all([
      call('slow', 'POST', '/functions/1/call'),
      // Started after the slow call: answered while it still runs, its slot still held.
      new Promise((resolve) => setTimeout(resolve, 100)).then(() =>
        Promise.all([call('list', 'POST', '/assets/list'), call('second', 'POST', '/functions/1/call')]),
      ),
    ]);
    expect([...order].sort()).toEqual(['list 200', 'second 429', 'slow 201']);
    expect(order.at(-1)).toBe('slow 201');
  });

  it('a bad latency entry is a 400 naming it', async () => {
    const { s } = await start();
    const res = await fetch(`${s.url}/_sim/options`, {
      method: 'POST',
      body: JSON.stringify({ latency: [{ match: 'x', ms: 1 }] }),
    });
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('latency[0].match');
  });
});
