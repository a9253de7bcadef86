#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { type SimLimit, type SimOptions, startSimulator } from './index.js';
import { checkOptions, parseTight } from './options.js';

const USAGE = `Usage: cdf-sim [options]   (npm run sim -- [options])

A stand-in for Cognite Data Fusion's REST API on loopback, for trying the gateway and your own scripts
without a CDF project. Any bearer token is accepted; every project name exists.
Covers: assets, events, time series, data sets, labels, relationships and sequences (list with filters
and partitions, search, byids, create with 409 on a duplicate externalId, update, delete, aggregate),
datapoints (insert, retrieve raw and aggregates, latest, delete), RAW (databases, tables, rows) and function
calls (call, read a call back). It throttles like CDF: see Limits below.

Options:
  --port <n>                   listen port (default 4000; 0 = random)
  --host <addr>                listen address (default 127.0.0.1)
  --latency-ms <ms>            added before answering each /api call
  --latency <path>=<ms>        instead of --latency-ms for the admitted calls a glob matches, e.g.
                               --latency '/functions/*/call=2000'; repeatable, first match wins

  Limits. By default the simulator enforces CDF's documented limit tree (API, CRUD, Analytical,
  Aggregation levels, per project and per identity; see docs/cdf-limits.md), like CDF.
  --no-tree                    do not enforce the documented tree (only the limits below)
  --tree-scale <x>             the documented figures times x (2: limits Cognite raised; 0.5: a quota
                               other consumers share)
  --tight <path>=<rate>/<concurrency>
                               an extra budget CDF does not publish, per project, checked first; e.g.
                               --tight /assets/byids=10/4 (10/s, 4 concurrent); repeatable; path is a
                               glob after /api/v1/projects/{project} (* one segment, ** any)
  --rate <n> --burst <n> --concurrency <n>
                               a flat limit per project and API family (unset = unlimited): with the
                               tree, an extra outermost level checked after the tree's own
  --identity-rate <n> --identity-burst <n> --identity-concurrency <n>
                               the same per identity and API family
  --charge-throttled           a 429 still spends the rate of every budget checked up to the one
                               that refused it
  --limiter <shape>            token-bucket (default; burst = a second of rate), fixed-window (at most
                               rate calls per clock second) or sliding-window (at most rate in any 1 s)
  --rate-figures <when>        rate 429s name their figure: budget (default: the flat limit's do, the
                               tree's and tight ones' do not), always or never
  --concurrency-figures <when> concurrency 429s name their figure: always (default, as CDF's) or never
  --no-figures                 no 429 message names a figure (both of the above never)
  --wording <words>            cdf (default) or alternate ("Rate limit of 30 requests/s exceeded for
                               project", "Too many concurrent requests (max 8)")
  --throttle-body <body>       json (default, CDF's), text (plain text) or large-json (over 64 KiB, the
                               message past the padding)
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
      'tree-scale': str,
      latency: { type: 'string', multiple: true },
      limiter: str,
      'rate-figures': str,
      'concurrency-figures': str,
      wording: str,
      'throttle-body': str,
      tight: { type: 'string', multiple: true },
      'retry-after': str,
      items: str,
    },
  });
  if (v.help) return undefined;
  const n = (flag: Exclude<keyof typeof v, 'tight' | 'latency'>) => number(flag, v[flag] as string | undefined);
  const figures: Record<string, string> = {};
  if (v['rate-figures'] !== undefined) figures.rate = v['rate-figures'];
  if (v['concurrency-figures'] !== undefined) figures.concurrency = v['concurrency-figures'];
  const options: Record<string, unknown> = {
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
    treeScale: n('tree-scale'),
    latency: (v.latency ?? []).map(parseRouteLatency),
    limiter: v.limiter,
    figures: Object.keys(figures).length > 0 ? figures : undefined,
    wording: v.wording,
    throttleBody: v['throttle-body'],
  };
  // The same checks as over HTTP, so a bad value is a usage error naming the option.
  return checkOptions(options);
}

function parseRouteLatency(spec: string): { match: string; ms: number } {
  const eq = spec.lastIndexOf('=');
  const raw = spec.slice(eq + 1);
  const ms = Number(raw);
  if (eq <= 0 || raw.trim() === '' || !Number.isFinite(ms) || ms < 0) {
    throw new Error(`--latency expects PATH=MS, e.g. /functions/*/call=2000; got '${spec}'`);
  }
  return { match: spec.slice(0, eq), ms };
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
