import { PointStore } from './points.js';

export const KINDS = ['assets', 'events', 'timeseries', 'datasets', 'labels', 'relationships', 'sequences'] as const;
export type Kind = (typeof KINDS)[number];
const KIND_SET: ReadonlySet<string> = new Set(KINDS);

export function isKind(family: string): family is Kind {
  return KIND_SET.has(family);
}

/** CDF gives label definitions and relationships no internal id: they are known by externalId alone. */
export function hasId(kind: Kind): boolean {
  return kind !== 'labels' && kind !== 'relationships';
}

const PREFIX: Record<Kind, string> = {
  assets: 'asset-',
  events: 'event-',
  timeseries: 'timeseries-',
  datasets: 'dataset-',
  labels: 'label-',
  relationships: 'relationship-',
  sequences: 'sequence-',
};

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

function dataset(id: number): object {
  return {
    id,
    externalId: `dataset-${id}`,
    name: `Data set ${id}`,
    description: `Simulated data set ${id} for ${SITES[id % SITES.length]}`,
    metadata: { site: SITES[id % SITES.length] },
    writeProtected: false,
    createdTime: CREATED_TIME,
    lastUpdatedTime: UPDATED_TIME,
  };
}

function label(id: number): object {
  return {
    externalId: `label-${id}`,
    name: `Label ${id}`,
    description: `Simulated label ${id}`,
    dataSetId: 1 + (id % 3),
    createdTime: CREATED_TIME,
  };
}

function relationship(id: number, count: number): object {
  return {
    externalId: `relationship-${id}`,
    sourceExternalId: `asset-${id}`,
    sourceType: 'asset',
    targetExternalId: `timeseries-${((id * 7) % count) + 1}`,
    targetType: 'timeSeries',
    confidence: 1,
    dataSetId: 1 + (id % 3),
    labels: [],
    createdTime: CREATED_TIME,
    lastUpdatedTime: UPDATED_TIME,
  };
}

function sequence(id: number): object {
  return {
    id,
    externalId: `sequence-${id}`,
    name: `Sequence ${id}`,
    description: `Simulated pump curve ${id} at ${SITES[id % SITES.length]}`,
    assetId: id,
    dataSetId: 1 + (id % 3),
    metadata: { site: SITES[id % SITES.length] },
    columns: [
      { externalId: 'flow', name: 'Flow', valueType: 'DOUBLE', metadata: {}, createdTime: CREATED_TIME },
      { externalId: 'head', name: 'Head', valueType: 'DOUBLE', metadata: {}, createdTime: CREATED_TIME },
    ],
    createdTime: CREATED_TIME,
    lastUpdatedTime: UPDATED_TIME,
  };
}

function generate(kind: Kind, id: number, count: number): object {
  switch (kind) {
    case 'assets':
      return asset(id);
    case 'events':
      return event(id, count);
    case 'timeseries':
      return timeseries(id);
    case 'datasets':
      return dataset(id);
    case 'labels':
      return label(id);
    case 'relationships':
      return relationship(id, count);
    case 'sequences':
      return sequence(id);
  }
}

/** One deterministic value per (series, timestamp), so any page of any range is reproducible. */
export function datapointValue(id: number, timestamp: number): number {
  return Math.round((Math.sin(timestamp / 60_000 + id) * 50 + 50) * 1000) / 1000;
}

interface CreatedStore {
  json: Map<number, string>;
  byExternalId: Map<string, number>;
}

/** Generated items that were updated or deleted: the generated list is patched in place until reset. */
interface Changes {
  deleted: Set<number>;
  /** Generated externalIds that no longer name their item (deleted or renamed). */
  goneExternalIds: Set<string>;
}

/** A change refused as CDF refuses it: 400 with `missing`, 409 with `duplicated`. */
export class DataError extends Error {
  constructor(
    readonly status: 400 | 409,
    message: string,
    readonly extra: Record<string, unknown>,
  ) {
    super(message);
  }
}

export type ItemRef = { id: number } | { externalId: string };

/** Items as pre-serialized JSON: answers splice strings instead of serializing objects per request. */
export class Dataset {
  private readonly generated: Partial<Record<Kind, string[]>> = {};
  private readonly created = Object.fromEntries(
    KINDS.map((k) => [k, { json: new Map(), byExternalId: new Map() }]),
  ) as Record<Kind, CreatedStore>;
  private readonly changes: Partial<Record<Kind, Changes>> = {};
  private nextId = FIRST_CREATED_ID;
  private readonly pages = new Map<string, Buffer>();
  private pageBytes = 0;
  /** Datapoints inserted into time series (generated or created). */
  readonly points = new PointStore();

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

  /** True for the ids the simulator generates (1..count), false for created items. */
  isGenerated(id: number): boolean {
    return Number.isInteger(id) && id >= 1 && id <= this.count;
  }

  /** JSON of one item, generated or created. */
  get(kind: Kind, id: number): string | undefined {
    if (this.isGenerated(id)) return this.changes[kind]?.deleted.has(id) ? undefined : this.all(kind)[id - 1];
    return this.created[kind].json.get(id);
  }

  idOfExternalId(kind: Kind, externalId: string): number | undefined {
    // Created, and generated ones renamed by an update, first: a renamed item can take a generated name.
    const known = this.created[kind].byExternalId.get(externalId);
    if (known !== undefined) return known;
    const prefix = PREFIX[kind];
    if (externalId.startsWith(prefix) && !this.changes[kind]?.goneExternalIds.has(externalId)) {
      const digits = externalId.slice(prefix.length);
      if (/^[1-9][0-9]*$/.test(digits)) {
        const id = Number(digits);
        if (id <= this.count) return id;
      }
    }
    return undefined;
  }

  /** The item a reference names, or undefined. */
  resolve(kind: Kind, ref: ItemRef): number | undefined {
    const id = 'id' in ref ? (hasId(kind) ? ref.id : undefined) : this.idOfExternalId(kind, ref.externalId);
    return id !== undefined && this.get(kind, id) !== undefined ? id : undefined;
  }

  /** The answer body for ids from..to (inclusive), with nextCursor when there is more. */
  page(kind: Kind, from: number, to: number, nextCursor: string | undefined): Buffer {
    const key = `${kind}:${from}:${to}:${nextCursor ?? ''}`;
    const cached = this.pages.get(key);
    if (cached) return cached;
    const list = this.all(kind);
    const deleted = this.changes[kind]?.deleted;
    let body = '{"items":[';
    let first = true;
    for (let id = from; id <= to; id++) {
      if (deleted?.has(id)) continue;
      body += first ? list[id - 1] : `,${list[id - 1]}`;
      first = false;
    }
    body += nextCursor === undefined ? ']}' : `],"nextCursor":"${nextCursor}"}`;
    const bytes = Buffer.from(body);
    if (this.pageBytes + bytes.length > MAX_PAGE_CACHE_BYTES) this.dropPages();
    this.pages.set(key, bytes);
    this.pageBytes += bytes.length;
    return bytes;
  }

  private dropPages(): void {
    this.pages.clear();
    this.pageBytes = 0;
  }

  /** Created items of a kind, oldest first (listed after the generated ones). */
  createdIds(kind: Kind): number[] {
    return [...this.created[kind].json.keys()];
  }

  /** Every item of a kind, generated then created, parsed: the slow path for filters and search. */
  *scan(kind: Kind, from = 1, to = this.count): Generator<Record<string, unknown>> {
    for (let id = from; id <= to; id++) {
      const json = this.get(kind, id);
      if (json !== undefined) yield JSON.parse(json) as Record<string, unknown>;
    }
    // Created items belong to the last partition.
    if (to < this.count) return;
    for (const json of this.created[kind].json.values()) yield JSON.parse(json) as Record<string, unknown>;
  }

  /** Forgets created items and undoes updates and deletes; the generated items are as at start. */
  clearCreated(): void {
    for (const kind of KINDS) {
      this.created[kind].json.clear();
      this.created[kind].byExternalId.clear();
      if (this.changes[kind]) {
        delete this.changes[kind];
        delete this.generated[kind];
      }
    }
    this.dropPages();
    this.points.clear();
    this.nextId = FIRST_CREATED_ID;
  }

  /** externalIds among `items` that exist already or repeat within the request, as CDF's `duplicated`. */
  private duplicates(kind: Kind, externalIds: Array<{ externalId: string; self?: number }>): ItemRef[] {
    const seen = new Set<string>();
    const duplicated: ItemRef[] = [];
    for (const { externalId, self } of externalIds) {
      const existing = this.idOfExternalId(kind, externalId);
      const taken = existing !== undefined && existing !== self && this.get(kind, existing) !== undefined;
      if (taken || seen.has(externalId)) duplicated.push({ externalId });
      seen.add(externalId);
    }
    return duplicated;
  }

  /** Creates all the items or none: a duplicate externalId refuses the whole request with 409. */
  createAll(kind: Kind, inputs: Record<string, unknown>[]): string[] {
    const duplicated = this.duplicates(
      kind,
      inputs.filter((i) => typeof i.externalId === 'string').map((i) => ({ externalId: i.externalId as string })),
    );
    if (duplicated.length > 0) throw new DataError(409, 'ExternalId duplicated', { duplicated });
    return inputs.map((input) => this.create(kind, input));
  }

  create(kind: Kind, input: Record<string, unknown>): string {
    const store = this.created[kind];
    const id = this.nextId++;
    const now = Date.now();
    const item = hasId(kind) ? { ...input, id } : { ...input };
    const json = JSON.stringify(
      // A label definition is never updated: it has no lastUpdatedTime.
      kind === 'labels' ? { ...item, createdTime: now } : { ...item, createdTime: now, lastUpdatedTime: now },
    );
    if (store.json.size >= MAX_CREATED) this.forgetOldest(store);
    store.json.set(id, json);
    if (typeof input.externalId === 'string') store.byExternalId.set(input.externalId, id);
    return json;
  }

  /** Applies CDF update objects (`{set}`, `{setNull}`, `{add, remove}`) to all the items or none. */
  updateAll(kind: Kind, items: Array<{ ref: ItemRef; update: Record<string, unknown> }>): string[] {
    const missing: ItemRef[] = [];
    const next: Array<{ id: number; before: Record<string, unknown>; after: Record<string, unknown> }> = [];
    for (const { ref, update } of items) {
      const id = this.resolve(kind, ref);
      if (id === undefined) {
        missing.push(ref);
        continue;
      }
      const before = JSON.parse(this.get(kind, id) as string) as Record<string, unknown>;
      next.push({ id, before, after: applyUpdate(before, update) });
    }
    if (missing.length > 0) throw new DataError(400, 'Ids not found', { missing });
    const renamed = next
      .filter((n) => typeof n.after.externalId === 'string' && n.after.externalId !== n.before.externalId)
      .map((n) => ({ externalId: n.after.externalId as string, self: n.id }));
    const duplicated = this.duplicates(kind, renamed);
    if (duplicated.length > 0) throw new DataError(409, 'ExternalId duplicated', { duplicated });
    return next.map(({ id, before, after }) => {
      after.lastUpdatedTime = Date.now();
      const json = JSON.stringify(after);
      this.replace(kind, id, before, after, json);
      return json;
    });
  }

  /** Deletes all the items or none; unknown ones are 400 `missing` unless `ignoreUnknownIds`. */
  deleteAll(kind: Kind, refs: ItemRef[], ignoreUnknownIds: boolean): void {
    const ids: number[] = [];
    const missing: ItemRef[] = [];
    for (const ref of refs) {
      const id = this.resolve(kind, ref);
      if (id === undefined) missing.push(ref);
      else ids.push(id);
    }
    if (missing.length > 0 && !ignoreUnknownIds) throw new DataError(400, 'Ids not found', { missing });
    for (const id of ids) {
      const before = JSON.parse(this.get(kind, id) as string) as Record<string, unknown>;
      this.replace(kind, id, before, undefined, undefined);
    }
  }

  private changesOf(kind: Kind): Changes {
    let changes = this.changes[kind];
    if (!changes) {
      changes = { deleted: new Set(), goneExternalIds: new Set() };
      this.changes[kind] = changes;
    }
    return changes;
  }

  /** Puts `json` (or nothing, for a delete) where item `id` was, keeping the externalId index right. */
  private replace(
    kind: Kind,
    id: number,
    before: Record<string, unknown>,
    after: Record<string, unknown> | undefined,
    json: string | undefined,
  ): void {
    const store = this.created[kind];
    const oldExternalId = typeof before.externalId === 'string' ? before.externalId : undefined;
    const newExternalId = typeof after?.externalId === 'string' ? after.externalId : undefined;
    if (oldExternalId !== undefined && oldExternalId !== newExternalId) {
      if (store.byExternalId.get(oldExternalId) === id) store.byExternalId.delete(oldExternalId);
      if (this.isGenerated(id)) this.changesOf(kind).goneExternalIds.add(oldExternalId);
    }
    if (newExternalId !== undefined && newExternalId !== oldExternalId) {
      store.byExternalId.set(newExternalId, id);
    }
    if (json === undefined && kind === 'timeseries') this.points.forget(id);
    if (this.isGenerated(id)) {
      const changes = this.changesOf(kind);
      if (json === undefined) changes.deleted.add(id);
      else this.all(kind)[id - 1] = json;
      this.dropPages();
    } else if (json === undefined) store.json.delete(id);
    else store.json.set(id, json);
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

// Fields CDF computes: an update cannot set them.
const READ_ONLY = new Set(['id', 'createdTime', 'lastUpdatedTime', 'rootId']);

/** CDF's update object on one item: `{set: v}`, `{setNull: true}`, `{add: ..., remove: ...}` per field. */
export function applyUpdate(item: Record<string, unknown>, update: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...item };
  for (const [field, op] of Object.entries(update)) {
    if (READ_ONLY.has(field)) throw new DataError(400, `Field ${field} cannot be updated`, {});
    if (op === null || typeof op !== 'object' || Array.isArray(op))
      throw new DataError(400, `Update of ${field} must be an object such as {"set": ...}`, {});
    const o = op as Record<string, unknown>;
    if ('set' in o) out[field] = o.set;
    else if (o.setNull === true) delete out[field];
    else if ('add' in o || 'remove' in o) {
      const current = out[field];
      if (Array.isArray(o.add) || Array.isArray(current)) {
        const key = (v: unknown) => JSON.stringify(v);
        const removed = new Set((Array.isArray(o.remove) ? o.remove : []).map(key));
        const list = (Array.isArray(current) ? current : []).filter((v) => !removed.has(key(v)));
        for (const v of Array.isArray(o.add) ? o.add : []) if (!list.some((w) => key(w) === key(v))) list.push(v);
        out[field] = list;
      } else {
        const map: Record<string, unknown> = { ...(current as Record<string, unknown> | undefined) };
        if (Array.isArray(o.remove)) for (const k of o.remove) delete map[String(k)];
        if (o.add !== null && typeof o.add === 'object') Object.assign(map, o.add);
        out[field] = map;
      }
    } else throw new DataError(400, `Update of ${field} must use set, setNull, add or remove`, {});
  }
  return out;
}
