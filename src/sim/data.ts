export const KINDS = ['assets', 'events', 'timeseries'] as const;
export type Kind = (typeof KINDS)[number];

export function isKind(family: string): family is Kind {
  return family === 'assets' || family === 'events' || family === 'timeseries';
}

const PREFIX: Record<Kind, string> = { assets: 'asset-', events: 'event-', timeseries: 'timeseries-' };

// Fixed timestamps so every run answers byte for byte the same.
const CREATED_TIME = 1_672_531_200_000;
const UPDATED_TIME = 1_704_067_200_000;
// Far above any generated id so created items never collide with the generated range, whatever `items` is.
const FIRST_CREATED_ID = 1_000_000_000;
// Created items are kept so byids/update can find them, but a benchmark that creates forever must not grow memory.
const MAX_CREATED = 100_000;
// Hot pages are re-sent as ready bytes; bounded so a long partitioned crawl cannot hoard memory.
const MAX_PAGE_CACHE_BYTES = 32 * 1024 * 1024;

const SITES = ['oslo', 'bergen', 'stavanger', 'trondheim', 'tromso', 'kristiansund', 'hammerfest'];
const EVENT_TYPES = ['maintenance', 'alarm', 'inspection', 'workorder'];
const UNITS = ['bar', 'degC', 'm3/h', 'rpm', 'kW'];

function parentOf(id: number): number | undefined {
  // Ten children per node: a shallow, deterministic tree rooted at asset 1.
  return id > 1 ? Math.floor((id - 2) / 10) + 1 : undefined;
}

function asset(id: number): object {
  const parentId = parentOf(id);
  return {
    id,
    externalId: `asset-${id}`,
    name: `Asset ${id}`,
    ...(parentId === undefined ? {} : { parentId, parentExternalId: `asset-${parentId}` }),
    rootId: 1,
    description: `Simulated equipment ${id} at ${SITES[id % SITES.length]}`,
    dataSetId: 1 + (id % 3),
    metadata: { site: SITES[id % SITES.length], area: `area-${id % 17}`, tag: `TAG-${(id * 7919) % 100000}` },
    source: 'cdf-sim',
    labels: [],
    createdTime: CREATED_TIME,
    lastUpdatedTime: UPDATED_TIME,
  };
}

function event(id: number, count: number): object {
  const startTime = CREATED_TIME + id * 60_000;
  return {
    id,
    externalId: `event-${id}`,
    type: EVENT_TYPES[id % EVENT_TYPES.length],
    subtype: `sub-${id % 5}`,
    description: `Simulated event ${id}`,
    startTime,
    endTime: startTime + 30 * 60_000,
    assetIds: [((id * 7) % count) + 1],
    dataSetId: 1 + (id % 3),
    metadata: { severity: String(id % 4), site: SITES[id % SITES.length] },
    source: 'cdf-sim',
    createdTime: CREATED_TIME,
    lastUpdatedTime: UPDATED_TIME,
  };
}

function timeseries(id: number): object {
  return {
    id,
    externalId: `timeseries-${id}`,
    name: `Sensor ${id}`,
    isString: false,
    isStep: id % 10 === 0,
    unit: UNITS[id % UNITS.length],
    assetId: id,
    description: `Simulated sensor ${id} at ${SITES[id % SITES.length]}`,
    dataSetId: 1 + (id % 3),
    metadata: { site: SITES[id % SITES.length], sampling: '1s' },
    securityCategories: [],
    createdTime: CREATED_TIME,
    lastUpdatedTime: UPDATED_TIME,
  };
}

function generate(kind: Kind, id: number, count: number): object {
  if (kind === 'assets') return asset(id);
  if (kind === 'events') return event(id, count);
  return timeseries(id);
}

/** One deterministic value per (series, timestamp), so any page of any range is reproducible. */
export function datapointValue(id: number, timestamp: number): number {
  return Math.round((Math.sin(timestamp / 60_000 + id) * 50 + 50) * 1000) / 1000;
}

interface CreatedStore {
  json: Map<number, string>;
  byExternalId: Map<string, number>;
}

/** Items as pre-serialized JSON: answers splice strings instead of serializing objects per request. */
export class Dataset {
  private readonly generated: Partial<Record<Kind, string[]>> = {};
  private readonly created: Record<Kind, CreatedStore> = {
    assets: { json: new Map(), byExternalId: new Map() },
    events: { json: new Map(), byExternalId: new Map() },
    timeseries: { json: new Map(), byExternalId: new Map() },
  };
  private nextId = FIRST_CREATED_ID;
  private readonly pages = new Map<string, Buffer>();
  private pageBytes = 0;

  constructor(readonly count: number) {}

  private all(kind: Kind): string[] {
    let list = this.generated[kind];
    if (!list) {
      list = new Array<string>(this.count);
      for (let id = 1; id <= this.count; id++) list[id - 1] = JSON.stringify(generate(kind, id, this.count));
      this.generated[kind] = list;
    }
    return list;
  }

  /** JSON of one item, generated or created. */
  get(kind: Kind, id: number): string | undefined {
    if (Number.isInteger(id) && id >= 1 && id <= this.count) return this.all(kind)[id - 1];
    return this.created[kind].json.get(id);
  }

  idOfExternalId(kind: Kind, externalId: string): number | undefined {
    const prefix = PREFIX[kind];
    if (externalId.startsWith(prefix)) {
      const digits = externalId.slice(prefix.length);
      if (/^[1-9][0-9]*$/.test(digits)) {
        const id = Number(digits);
        if (id <= this.count) return id;
      }
    }
    return this.created[kind].byExternalId.get(externalId);
  }

  /** The answer body for ids from..to (inclusive), with nextCursor when there is more. */
  page(kind: Kind, from: number, to: number, nextCursor: string | undefined): Buffer {
    const key = `${kind}:${from}:${to}:${nextCursor ?? ''}`;
    const cached = this.pages.get(key);
    if (cached) return cached;
    const list = this.all(kind);
    let body = '{"items":[';
    for (let id = from; id <= to; id++) body += id === from ? list[id - 1] : `,${list[id - 1]}`;
    body += nextCursor === undefined ? ']}' : `],"nextCursor":"${nextCursor}"}`;
    const bytes = Buffer.from(body);
    if (this.pageBytes + bytes.length > MAX_PAGE_CACHE_BYTES) {
      this.pages.clear();
      this.pageBytes = 0;
    }
    this.pages.set(key, bytes);
    this.pageBytes += bytes.length;
    return bytes;
  }

  /** Forgets created items; the generated ones (and their cached pages) never change. */
  clearCreated(): void {
    for (const kind of KINDS) {
      this.created[kind].json.clear();
      this.created[kind].byExternalId.clear();
    }
    this.nextId = FIRST_CREATED_ID;
  }

  create(kind: Kind, input: Record<string, unknown>): string {
    const store = this.created[kind];
    const id = this.nextId++;
    const now = Date.now();
    const json = JSON.stringify({ ...input, id, createdTime: now, lastUpdatedTime: now });
    if (store.json.size >= MAX_CREATED) this.forgetOldest(store);
    store.json.set(id, json);
    if (typeof input.externalId === 'string') store.byExternalId.set(input.externalId, id);
    return json;
  }

  private forgetOldest(store: CreatedStore): void {
    const oldest = store.json.keys().next().value;
    if (oldest === undefined) return;
    const json = store.json.get(oldest);
    store.json.delete(oldest);
    const externalId = json === undefined ? undefined : (JSON.parse(json) as { externalId?: unknown }).externalId;
    if (typeof externalId === 'string' && store.byExternalId.get(externalId) === oldest) {
      store.byExternalId.delete(externalId);
    }
  }
}
