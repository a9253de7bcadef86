import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { FastifyInstance, FastifyReply } from 'fastify';

/** The page's own files, served byte for byte as they are in the repository (copied next to dist/ by the build). */
const STATIC_DIR = new URL('./static/', import.meta.url);

/** Everything the page loads comes from the gateway itself. */
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

interface Asset {
  type: string;
  body: Buffer;
}

let files: Record<string, Asset> | null = null;

/** The page's files and uPlot from node_modules, read once per process (at the first gateway's start-up). */
function assets(): Record<string, Asset> {
  if (files === null) {
    const require = createRequire(import.meta.url);
    const own = (name: string) => readFileSync(new URL(name, STATIC_DIR));
    files = {
      '/dashboard/uplot.js': {
        type: 'text/javascript; charset=utf-8',
        body: readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js')),
      },
      '/dashboard/uplot.css': {
        type: 'text/css; charset=utf-8',
        body: readFileSync(require.resolve('uplot/dist/uPlot.min.css')),
      },
      '/dashboard/app.js': { type: 'text/javascript; charset=utf-8', body: own('app.js') },
      '/dashboard/app.css': { type: 'text/css; charset=utf-8', body: own('app.css') },
      '/dashboard/favicon.svg': { type: 'image/svg+xml', body: own('favicon.svg') },
      '/dashboard': { type: 'text/html; charset=utf-8', body: own('index.html') },
    };
  }
  return files;
}

/**
 * GET /dashboard (the page), its scripts and styles under /dashboard/, and /dashboard/data.json, filled by
 * `data()` on each call. Registered as exact paths: on the main app they take precedence over the
 * catch-all that forwards to CDF, for GET and HEAD only.
 */
export function registerDashboard(app: FastifyInstance, data: () => unknown): void {
  const { '/dashboard': html, ...scripts } = assets();
  for (const [path, asset] of Object.entries(scripts)) {
    app.get(path, (_req, reply) => {
      reply
        .header('content-type', asset.type)
        .header('cache-control', 'no-cache')
        .header('x-content-type-options', 'nosniff')
        .send(asset.body);
    });
  }
  const page = (_req: unknown, reply: FastifyReply) => {
    reply
      .header('content-type', 'text/html; charset=utf-8')
      .header('cache-control', 'no-cache')
      .header('content-security-policy', CSP)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .send(html.body);
  };
  app.get('/dashboard', page);
  app.get('/dashboard/', page);
  app.get('/dashboard/data.json', (_req, reply) => {
    reply
      .header('cache-control', 'no-store')
      .header('content-type', 'application/json; charset=utf-8')
      .send(JSON.stringify(data()));
  });
}
