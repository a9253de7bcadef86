// Child process of the memory benchmark (pinned to the load core): holds many connections open, or
// downloads a large body, or fills a cache; prints one JSON line.
//   node bench/lib/client.mjs hold URL N      N concurrent GETs, each on its own connection
//   node bench/lib/client.mjs download URL    one GET, body read and dropped
//   node bench/lib/client.mjs fill BASE N     N GETs of distinct ~330 KB asset pages, 8 at a time
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';

const [mode, url, nRaw] = process.argv.slice(2);
const n = Number(nRaw ?? 1);
const headers = { authorization: 'Bearer bench-token' };
const agent = new Agent({ keepAlive: false, maxSockets: Number.POSITIVE_INFINITY });

function get(target) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const req = request(target, { agent, headers }, (res) => {
      let bytes = 0;
      res.on('data', (chunk) => {
        bytes += chunk.length;
      });
      res.once('end', () => resolve({ status: res.statusCode, bytes, ms: performance.now() - t0 }));
      res.once('error', (err) => resolve({ status: 'error', error: err.message, bytes, ms: performance.now() - t0 }));
    });
    req.once('error', (err) => resolve({ status: 'error', error: err.message, bytes: 0, ms: performance.now() - t0 }));
    req.end();
  });
}

function tally(results) {
  const byStatus = {};
  for (const r of results) byStatus[r.status] = (byStatus[r.status] ?? 0) + 1;
  return byStatus;
}

let out;
if (mode === 'hold') {
  const t0 = performance.now();
  const results = await Promise.all(Array.from({ length: n }, () => get(url)));
  out = {
    byStatus: tally(results),
    ms: performance.now() - t0,
    errors: [...new Set(results.filter((r) => r.error).map((r) => r.error))].slice(0, 3),
  };
} else if (mode === 'download') {
  const r = await get(url);
  out = { ...r, mibPerSec: r.bytes / 2 ** 20 / (r.ms / 1000) };
} else if (mode === 'fill') {
  const results = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < n) {
        const i = next++;
        // Distinct keys: 100 page sizes x 10 partitions.
        results.push(
          await get(
            `${url}/api/v1/projects/p/assets?limit=${1000 - (i % 100)}&partition=${1 + (Math.floor(i / 100) % 10)}/10`,
          ),
        );
      }
    }),
  );
  out = { byStatus: tally(results), bytes: results.reduce((a, r) => a + r.bytes, 0) };
} else throw new Error(`unknown mode ${mode}`);
process.stdout.write(`${JSON.stringify(out)}\n`);
process.exit(0);
