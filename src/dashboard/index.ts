import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { DASHBOARD_CSS, DASHBOARD_FAVICON, DASHBOARD_HTML, DASHBOARD_JS } from './page.js';

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
  body: string;
}

let uplot: { js: string; css: string } | null = null;

/** uPlot from node_modules, read once per process (at the first gateway's start-up). */
function uplotAssets(): { js: string; css: string } {
  if (uplot === null) {
    const require = createRequire(import.meta.url);
    uplot = {
      js: readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8'),
      css: readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8'),
    };
  }
  return uplot;
}

/**
 * GET /dashboard (the page), its scripts and styles under /dashboard/, and /dashboard/data.json, filled by
 * `data()` on each call. Registered as exact paths: on the main app they take precedence over the
 * catch-all that forwards to CDF, for GET and HEAD only.
 */
export function registerDashboard(app: FastifyInstance, data: () => unknown): void {
  const { js, css } = uplotAssets();
  const assets: Record<string, Asset> = {
    '/dashboard/uplot.js': { type: 'text/javascript; charset=utf-8', body: js },
    '/dashboard/uplot.css': { type: 'text/css; charset=utf-8', body: css },
    '/dashboard/app.js': { type: 'text/javascript; charset=utf-8', body: DASHBOARD_JS },
    '/dashboard/app.css': { type: 'text/css; charset=utf-8', body: DASHBOARD_CSS },
    '/dashboard/favicon.svg': { type: 'image/svg+xml', body: DASHBOARD_FAVICON },
  };
  for (const [path, asset] of Object.entries(assets)) {
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
      .send(DASHBOARD_HTML);
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
