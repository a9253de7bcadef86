#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { type SimLimit, type SimOptions, startSimulator } from './index.js';
import { parseTight } from './options.js';

const USAGE = `Usage: cdf-sim [options]   (npm run sim -- [options])

A stand-in for Cognite Data Fusion's REST API on loopback, for trying the gateway and your own scripts
without a CDF project. Any bearer token is accepted; every project name exists.
Covers: assets, events, time series (list with filters and partitions, search, byids, create with 409
on a duplicate externalId, update, delete, aggregate), datapoints (insert, retrieve raw and aggregates,
latest, delete) and RAW (databases, tables, rows). It throttles like CDF: see Limits below.

Options:
  --port <n>                   listen port (default 4000; 0 = random)
  --host <addr>                listen address (default 127.0.0.1)
  --latency-ms <ms>            added before answering each /api call

  Limits. By default the simulator enforces CDF's documented limit tree (API, CRUD, Analytical,
  Aggregation levels, per project and per identity; see docs/cdf-limits.md), like CDF.
  --no-tree                    do not enforce the documented tree (only the limits below)
  --tight <path>=<rate>/<concurrency>
                               an extra budget CDF does not publish, per project, checked first; e.g.
                               --tight /assets/byids=10/4 (10/s, 4 concurrent); repeatable; path is a
                               glob after /api/v1/projects/{project} (* one segment, ** any)
  --rate <n> --burst <n> --concurrency <n>
                               a flat limit per project and API family (unset = unlimited): with the
                               tree, an extra outermost level checked after the tree's own
  --identity-rate <n> --identity-burst <n> --identity-concurrency <n>
                               the same per identity and API family
  --charge-throttled           a 429 still takes a token from every budget checked up to the one
                               that refused it
  --no-figures                 429 messages name no figure (CDF's concurrency ones do; rate ones may not)
  --retry-after <seconds>      429s carry Retry-After
  --items <n>                  generated items per resource type (default 1000)
  -h, --help                   show this help and exit

Control API: GET /_sim/stats, POST /_sim/reset, /_sim/options, /_sim/faults (see README).
`;

function number(flag: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || n < 0) throw new Error(`--${flag} must be a non-negative number`);
  return n;
}

/** A limit when any of its flags is given; missing ones are unlimited, except burst which defaults to the rate. */
function limit(rate?: number, burst?: number, concurrency?: number): SimLimit | null {
  if (rate === undefined && burst === undefined && concurrency === undefined) return null;
  const r = rate ?? Number.POSITIVE_INFINITY;
  return { rate: r, burst: burst ?? r, concurrency: concurrency ?? Number.POSITIVE_INFINITY };
}

function parse(argv: string[]): Partial<SimOptions> | undefined {
  const str = { type: 'string' } as const;
  const { values: v } = parseArgs({
    args: argv,
    strict: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      port: str,
      host: str,
      'latency-ms': str,
      rate: str,
      burst: str,
      concurrency: str,
      'identity-rate': str,
      'identity-burst': str,
      'identity-concurrency': str,
      'charge-throttled': { type: 'boolean' },
      'no-tree': { type: 'boolean' },
      'no-figures': { type: 'boolean' },
      tight: { type: 'string', multiple: true },
      'retry-after': str,
      items: str,
    },
  });
  if (v.help) return undefined;
  const n = (flag: Exclude<keyof typeof v, 'tight'>) => number(flag, v[flag] as string | undefined);
  return {
    host: v.host ?? '127.0.0.1',
    port: n('port') ?? 4000,
    latencyMs: n('latency-ms') ?? 0,
    project: limit(n('rate'), n('burst'), n('concurrency')),
    identity: limit(n('identity-rate'), n('identity-burst'), n('identity-concurrency')),
    chargeThrottled: v['charge-throttled'] ?? false,
    tree: !v['no-tree'],
    statesFigures: !v['no-figures'],
    tight: (v.tight ?? []).map(parseTight),
    retryAfterSeconds: n('retry-after') ?? null,
    items: n('items') ?? 1000,
  };
}

async function main(): Promise<void> {
  let options: Partial<SimOptions> | undefined;
  try {
    options = parse(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (!options) {
    process.stdout.write(USAGE);
    return;
  }
  const sim = await startSimulator(options);
  process.stdout.write(`CDF simulator listening on ${sim.url}\n`);
  let closing = false;
  const stop = () => {
    if (closing) return;
    closing = true;
    // Pending latency or slow timers would otherwise keep the process alive after the server closes.
    sim.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`cdf-sim: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
