import { get } from 'node:http';
import { Writable } from 'node:stream';
import { buildGateway, type Gateway } from '../src/app.js';
import { loadConfig } from '../src/config/index.js';
import { type SimOptions, type Simulator, startSimulator } from '../src/sim/index.js';

/** Log lines the gateway wrote, parsed. */
export class LogCapture extends Writable {
  readonly lines: Array<Record<string, unknown>> = [];
  readonly raw: string[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line) continue;
      this.raw.push(line);
      try {
        this.lines.push(JSON.parse(line));
      } catch {
        // pretty or partial lines are kept in raw only
      }
    }
    done();
  }
  requests(): Array<Record<string, unknown>> {
    return this.lines.filter((l) => l.msg === 'request');
  }
}

export interface Stack {
  sim: Simulator;
  gateway: Gateway;
  /** The gateway's base URL, e.g. http://127.0.0.1:41234 */
  url: string;
  logs: LogCapture;
  close(): Promise<void>;
}

/**
 * A real simulator and a real gateway on loopback, the gateway pointed at the simulator.
 * `overrides` are layered over config/default.yaml like a user's file.
 */
export async function startStack(
  overrides: Record<string, unknown> = {},
  sim: Partial<SimOptions> = {},
): Promise<Stack> {
  const simulator = await startSimulator(sim);
  const logs = new LogCapture();
  const config = loadConfig({
    env: {},
    overrides: layerOver(
      { server: { port: 0 }, upstream: { baseUrl: simulator.url }, log: { pretty: false } },
      overrides,
    ),
  });
  const gateway = await buildGateway(config, { logDestination: logs });
  const url = await gateway.listen();
  return {
    sim: simulator,
    gateway,
    url,
    logs,
    async close() {
      await gateway.close();
      await simulator.close();
    },
  };
}

function layerOver(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] =
      b && v && typeof b === 'object' && typeof v === 'object' && !Array.isArray(b) && !Array.isArray(v)
        ? layerOver(b as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

export const TOKEN = 'Bearer test-token-1';
export const auth = (token = TOKEN) => ({ authorization: token });

/** A JWT-shaped bearer token (unsigned) whose claims the gateway reads for the identity. */
export function jwt(claims: Record<string, unknown>): string {
  const part = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `Bearer ${part({ alg: 'none', typ: 'JWT' })}.${part(claims)}.sig`;
}

/** A single-limit config: every project path in one bucket. */
export function oneLimit(limit: Record<string, unknown>): Record<string, unknown> {
  return { limits: [{ name: 'all', match: ['/**'], per: 'project', ...limit }] };
}

/** An answer read whole, with its body parsed when it is JSON. */
export interface Answer {
  status: number;
  headers: Headers;
  text: string;
  // biome-ignore lint/suspicious/noExplicitAny: answers are inspected field by field
  json: any;
}

export interface CallOptions {
  method?: string;
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  token?: string;
}

/** One call through the gateway; a body is sent as JSON (a string as it is). */
export async function call(stack: Stack, path: string, opts: CallOptions = {}): Promise<Answer> {
  const res = await fetch(stack.url + path, {
    method: opts.method ?? (opts.body === undefined ? 'GET' : 'POST'),
    headers: {
      ...auth(opts.token),
      ...(opts.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...opts.headers,
    },
    body: opts.body === undefined || typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body),
    signal: opts.signal,
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

/** Polls until `check` holds; fails the test with `what` after `timeoutMs` (a generous bound, not a measurement). */

/** GET over a fresh connection (no keep-alive left behind to slow the shutdown down). */
export function httpGet(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((done, fail) => {
    const req = get(url, { headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => done({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', fail);
  });
}
