import { createHash } from 'node:crypto';
import { type Call, HttpError } from './reply.js';

const CHUNK_BYTES = 64 * 1024;
// One shared, never-modified buffer: a download of any size costs no allocation per chunk.
const CHUNK = Buffer.alloc(CHUNK_BYTES, 'cdf-sim blob\n');
const MAX_SLOW_MS = 10 * 60 * 1000;

/** Test helpers under /api/v1/projects/{p}/_sim/; `rest` is the path after `_sim`. */
export function simHelper(call: Call, method: string, rest: string[], query: string): void {
  const name = rest[0] ?? '';
  if (name.startsWith('echo')) echo(call);
  else if (method === 'GET' && rest.length === 1 && name === 'blob') {
    blob(call, integerParam(query, 'bytes', Number.MAX_SAFE_INTEGER));
  } else if (method === 'GET' && rest.length === 1 && name === 'slow') {
    slow(call, integerParam(query, 'ms', MAX_SLOW_MS));
  } else throw new HttpError(404, `Unknown path: ${method} _sim/${rest.join('/')}`);
}

function integerParam(query: string, name: string, max: number): number {
  const raw = new URLSearchParams(query).get(name);
  if (raw === null || !/^[0-9]{1,16}$/.test(raw) || Number(raw) > max) {
    throw new HttpError(400, `Query parameter ${name} must be an integer between 0 and ${max}`);
  }
  return Number(raw);
}

function blob(call: Call, bytes: number): void {
  const res = call.res;
  if (res.destroyed) return;
  call.counted(200);
  res.writeHead(200, {
    'content-type': 'application/octet-stream',
    'content-length': bytes,
    'x-request-id': call.requestId,
  });
  let left = bytes;
  const pump = (): void => {
    while (left > 0) {
      // A destroyed response never drains: stop instead of queueing the rest in memory.
      if (res.destroyed) return;
      const n = Math.min(left, CHUNK_BYTES);
      left -= n;
      if (!res.write(n === CHUNK_BYTES ? CHUNK : CHUNK.subarray(0, n))) {
        res.once('drain', pump);
        return;
      }
    }
    res.end();
  };
  pump();
}

function echo(call: Call): void {
  const { req } = call;
  const hash = createHash('sha256');
  let bytes = 0;
  req.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    hash.update(chunk);
  });
  req.once('end', () => {
    call.json(200, {
      method: req.method,
      url: req.url,
      headers: req.headers,
      bodyBytes: bytes,
      bodySha256: hash.digest('hex'),
      contentEncoding: req.headers['content-encoding'] ?? null,
    });
  });
}

function slow(call: Call, ms: number): void {
  const timer = setTimeout(() => call.send(200, '{}'), ms);
  // A long wait for a client that left (or a closed simulator) must not keep the process alive.
  call.res.once('close', () => clearTimeout(timer));
}
