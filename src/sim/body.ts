import type { IncomingMessage } from 'node:http';
import { promisify } from 'node:util';
import { gunzip, inflate } from 'node:zlib';
import { HttpError } from './reply.js';

const MAX_BODY_BYTES = 64 * 1024 * 1024;
const gunzipAsync = promisify(gunzip);
const inflateAsync = promisify(inflate);

export function readRaw(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        // Keep draining so the 413 can still be answered on this connection.
        req.off('data', onData);
        req.resume();
        reject(new HttpError(413, `Request body larger than ${MAX_BODY_BYTES} bytes`));
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size)));
    req.once('error', reject);
  });
}

async function decode(raw: Buffer, encoding: string | undefined): Promise<Buffer> {
  if (encoding === undefined || encoding === '' || encoding === 'identity') return raw;
  const options = { maxOutputLength: MAX_BODY_BYTES };
  try {
    if (encoding === 'gzip') return await gunzipAsync(raw, options);
    if (encoding === 'deflate') return await inflateAsync(raw, options);
  } catch (err) {
    throw new HttpError(400, `Could not decode ${encoding} request body: ${(err as Error).message}`);
  }
  throw new HttpError(415, `Unsupported Content-Encoding: ${encoding}`);
}

/** The JSON object in the request body (gzip/deflate decoded); an empty body is {}. */
export async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const raw = await readRaw(req);
  if (raw.length === 0) return {};
  const text = (await decode(raw, req.headers['content-encoding']?.trim().toLowerCase())).toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new HttpError(400, 'Invalid JSON in request body');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new HttpError(400, 'Request body must be a JSON object');
  }
  return value as Record<string, unknown>;
}
