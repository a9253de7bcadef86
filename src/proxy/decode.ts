import { promisify } from 'node:util';
import { brotliDecompress, gunzip, inflate, type ZlibOptions } from 'node:zlib';

const DECODERS: Record<string, (buf: Buffer, opts: ZlibOptions) => Promise<Buffer>> = {
  gzip: promisify(gunzip) as (buf: Buffer, opts: ZlibOptions) => Promise<Buffer>,
  'x-gzip': promisify(gunzip) as (buf: Buffer, opts: ZlibOptions) => Promise<Buffer>,
  deflate: promisify(inflate) as (buf: Buffer, opts: ZlibOptions) => Promise<Buffer>,
  br: promisify(brotliDecompress) as (buf: Buffer, opts: ZlibOptions) => Promise<Buffer>,
};

/**
 * A buffered request body decoded (Content-Encoding undone, asynchronously on zlib's thread pool, never past
 * `maxBytes` of output) and parsed as JSON. undefined when it is not JSON, its encoding is unknown, or it
 * does not decode within the bound: the body is then forwarded untouched, and neither checked nor cached.
 */
export async function decodeJson(
  body: Buffer,
  encoding: string | string[] | undefined,
  maxBytes: number,
): Promise<unknown> {
  let raw = body;
  if (encoding !== undefined && encoding !== '' && encoding !== 'identity') {
    const decode = typeof encoding === 'string' ? DECODERS[encoding.trim().toLowerCase()] : undefined;
    if (decode === undefined) return undefined;
    try {
      raw = await decode(body, { maxOutputLength: Math.max(1, maxBytes) });
    } catch {
      return undefined;
    }
  } else if (body.length > maxBytes) return undefined;
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch {
    return undefined;
  }
}
