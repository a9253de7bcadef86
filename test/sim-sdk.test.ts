/**
 * A newcomer's first script, with the official @cognite/sdk, against the simulator straight and
 * through the gateway: list, search, by ids, create (409 on a duplicate externalId), update, delete,
 * datapoints insert and retrieve, and RAW databases, tables and rows.
 */
import * as sdk from '@cognite/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack } from './helpers.js';

// The SDK's typings do not resolve under NodeNext (see src/demo/scenario.ts): the calls are typed loosely.
// biome-ignore lint/suspicious/noExplicitAny: the SDK's own typings are not usable here
type Client = any;
const CogniteClient = (sdk as unknown as { CogniteClient: new (options: Record<string, unknown>) => Client })
  .CogniteClient;

let stack: Stack;

beforeAll(async () => {
  stack = await startStack({}, { items: 200 });
});
afterAll(async () => {
  await stack?.close();
});

interface Refusal {
  status: number;
  errorMessage: string;
  missing?: unknown[];
  duplicated?: unknown[];
}

/** What the SDK threw (its CogniteError carries the status and CDF's `missing` / `duplicated`). */
async function refusal(promise: Promise<unknown>): Promise<Refusal> {
  try {
    await promise;
  } catch (err) {
    return err as Refusal;
  }
  throw new Error('expected the call to fail');
}

describe.each([
  ['straight to the simulator', () => stack.sim.url],
  ['through the gateway', () => stack.url],
])('a first @cognite/sdk script, %s', (_where, baseUrl) => {
  let client: Client;
  const tag = `${Math.random().toString(36).slice(2, 8)}`;

  beforeAll(async () => {
    client = new CogniteClient({
      appId: `first-script-${tag}`,
      project: 'newcomer',
      baseUrl: baseUrl(),
      oidcTokenProvider: async () => 'a-token',
    });
    await client.authenticate();
  });

  it('lists, searches and retrieves by ids', async () => {
    const page = await client.assets.list({ limit: 5 });
    expect(page.items.map((a: { id: number }) => a.id)).toEqual([1, 2, 3, 4, 5]);
    expect(page.nextCursor).toBeTypeOf('string');
    const next = await page.next();
    expect(next.items[0].id).toBe(6);

    const filtered = await client.assets.list({ filter: { parentIds: [{ id: 1 }] }, limit: 100 });
    expect(filtered.items.length).toBe(10);
    expect(filtered.items.every((a: { parentId: number }) => a.parentId === 1)).toBe(true);

    const found = await client.assets.search({ search: { name: 'Asset 17' }, limit: 10 });
    expect(found.map((a: { name: string }) => a.name)).toContain('Asset 17');
    expect(found.every((a: { name: string }) => a.name.includes('17'))).toBe(true);
    const byQuery = await client.timeseries.search({ search: { query: 'sensor 42' } });
    expect(byQuery.map((t: { id: number }) => t.id)).toContain(42);

    const byIds = await client.assets.retrieve([{ id: 3 }, { externalId: 'asset-4' }]);
    expect(byIds.map((a: { id: number }) => a.id)).toEqual([3, 4]);
    const unknown = await refusal(client.assets.retrieve([{ id: 999_999 }]));
    expect(unknown.status).toBe(400);
    expect(unknown.missing).toEqual([{ id: 999_999 }]);
  });

  it('creates, refuses a duplicate externalId with 409, updates and deletes', async () => {
    const [pump] = await client.assets.create([{ externalId: `pump-${tag}`, name: 'Pump', metadata: { a: '1' } }]);
    expect(pump).toMatchObject({ externalId: `pump-${tag}`, name: 'Pump' });

    const again = await refusal(client.assets.create([{ externalId: `pump-${tag}`, name: 'Pump again' }]));
    expect(again.status).toBe(409);
    expect(again.duplicated).toEqual([{ externalId: `pump-${tag}` }]);
    const generated = await refusal(client.assets.create([{ externalId: 'asset-1', name: 'Taken' }]));
    expect(generated.status).toBe(409);

    const [updated] = await client.assets.update([
      { externalId: `pump-${tag}`, update: { name: { set: 'Pump P-101' }, metadata: { add: { b: '2' } } } },
    ]);
    expect(updated).toMatchObject({ id: pump.id, name: 'Pump P-101', metadata: { a: '1', b: '2' } });
    const [reread] = await client.assets.retrieve([{ id: pump.id }]);
    expect(reread.name).toBe('Pump P-101');
    // Generated items change too.
    await client.assets.update([{ id: 7, update: { description: { set: 'Checked' } } }]);
    expect((await client.assets.retrieve([{ id: 7 }]))[0].description).toBe('Checked');
    const found = await client.assets.search({ search: { name: 'P-101' } });
    expect(found.map((a: { id: number }) => a.id)).toContain(pump.id);

    // Listing every asset reaches the created ones after the generated ones, across pages.
    const all = await client.assets.list({ limit: 70 }).autoPagingToArray({ limit: Number.POSITIVE_INFINITY });
    expect(all.map((a: { id: number }) => a.id)).toContain(pump.id);
    expect(new Set(all.map((a: { id: number }) => a.id)).size).toBe(all.length);
    const byPrefix = await client.assets
      .list({ filter: { externalIdPrefix: `pump-${tag}` }, limit: 1 })
      .autoPagingToArray({ limit: 10 });
    expect(byPrefix.map((a: { id: number }) => a.id)).toEqual([pump.id]);

    await client.assets.delete([{ id: pump.id }]);
    const gone = await refusal(client.assets.retrieve([{ id: pump.id }]));
    expect(gone.status).toBe(400);
    // Its externalId is free again.
    const [recreated] = await client.assets.create([{ externalId: `pump-${tag}`, name: 'Pump' }]);
    expect(recreated.id).not.toBe(pump.id);
    await client.assets.delete([{ externalId: `pump-${tag}` }]);
  });

  it('inserts datapoints and returns them on retrieve', async () => {
    const [series] = await client.timeseries.create([{ externalId: `temp-${tag}`, name: 'Temperature' }]);
    const t0 = Date.UTC(2026, 0, 1);
    await client.datapoints.insert([
      {
        externalId: `temp-${tag}`,
        datapoints: [
          { timestamp: t0, value: 20.5 },
          { timestamp: t0 + 60_000, value: 21 },
          { timestamp: t0 + 120_000, value: 22.25 },
        ],
      },
    ]);
    const [got] = await client.datapoints.retrieve({
      items: [{ id: series.id }],
      start: t0,
      end: t0 + 3_600_000,
    });
    expect(got.externalId).toBe(`temp-${tag}`);
    expect(got.datapoints.map((d: { value: number }) => d.value)).toEqual([20.5, 21, 22.25]);
    expect(got.datapoints.map((d: { timestamp: Date }) => new Date(d.timestamp).getTime())).toEqual([
      t0,
      t0 + 60_000,
      t0 + 120_000,
    ]);
    const [latest] = await client.datapoints.retrieveLatest([{ externalId: `temp-${tag}` }]);
    expect(latest.datapoints[0].value).toBe(22.25);
    const [avg] = await client.datapoints.retrieve({
      items: [{ id: series.id }],
      start: t0,
      end: t0 + 3_600_000,
      aggregates: ['average', 'count'],
      granularity: '1h',
    });
    expect(avg.datapoints[0]).toMatchObject({ count: 3 });
  });

  it('creates RAW databases and tables, inserts, reads and deletes rows', async () => {
    const db = `db_${tag}`;
    await client.raw.createDatabases([{ name: db }]);
    expect((await client.raw.listDatabases().autoPagingToArray()).map((d: { name: string }) => d.name)).toContain(db);
    await client.raw.createTables(db, [{ name: 'pumps' }]);
    expect((await client.raw.listTables(db).autoPagingToArray()).map((t: { name: string }) => t.name)).toEqual([
      'pumps',
    ]);
    await client.raw.insertRows(db, 'pumps', [
      { key: 'p1', columns: { rating: 5 } },
      { key: 'p2', columns: { rating: 7 } },
    ]);
    const rows = await client.raw.listRows(db, 'pumps').autoPagingToArray();
    expect(rows.map((r: { key: string }) => r.key)).toEqual(['p1', 'p2']);
    expect((await client.raw.retrieveRow(db, 'pumps', 'p2')).columns).toEqual({ rating: 7 });
    await client.raw.deleteRows(db, 'pumps', [{ key: 'p1' }]);
    expect((await client.raw.listRows(db, 'pumps').autoPagingToArray()).map((r: { key: string }) => r.key)).toEqual([
      'p2',
    ]);
    const dup = await refusal(client.raw.createDatabases([{ name: db }]));
    expect(dup.status).toBe(400);
    expect(dup.duplicated).toEqual([{ name: db }]);
    await client.raw.deleteDatabases([{ name: db }], { recursive: true });
    expect((await client.raw.listDatabases().autoPagingToArray()).map((d: { name: string }) => d.name)).not.toContain(
      db,
    );
  });
});
