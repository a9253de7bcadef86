import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { ConfigError, type GatewayConfig } from '../config/index.js';
import { registerDashboard } from '../dashboard/index.js';
import { GatewayErrors } from '../errors.js';
import { SCHEMALESS } from '../schemaless.js';
import { adminAuth } from './admin-auth.js';
import { History } from './history.js';
import { Registry } from './prom.js';
import { PrometheusExport } from './prometheus.js';
import { Recorder } from './recorder.js';
import type { MetricsSource } from './source.js';
import { noTelemetry, type Telemetry } from './telemetry.js';

export type { DashboardBucket, DashboardData } from './history.js';
export type { MetricsSource, QuotaView } from './source.js';
export type { Telemetry } from './telemetry.js';

/** Telemetry that feeds Prometheus and the dashboard, plus the admin routes that show them. */
export interface Metrics {
  telemetry: Telemetry;
  /** Adds /metrics and /dashboard to the main app, or starts the admin server on metrics.port. */
  mount(app: FastifyInstance, source: MetricsSource): Promise<void>;
  /** URL of the separate admin server, when there is one. */
  adminUrl(): string | null;
  close(): Promise<void>;
}

/**
 * With `metrics.enabled: false` nothing is counted and no route is added (so /metrics on the main port
 * goes to CDF like any path). Otherwise: a registry of its own per gateway, a recorder on the request
 * path, and a dashboard history sampled once per second while the gateway runs.
 */
export function createMetrics(config: GatewayConfig): Metrics {
  if (!config.metrics.enabled) {
    return { telemetry: noTelemetry, async mount() {}, adminUrl: () => null, async close() {} };
  }
  // One registry per gateway: tests (and embedders) run several gateways in one process.
  const registry = new Registry();
  const recorder = new Recorder(
    registry,
    config.limits,
    config.metrics.maxClients,
    config.clients.map((c) => c.name),
  );
  const exporter = new PrometheusExport(recorder, registry);
  const history = new History(recorder);
  let admin: FastifyInstance | null = null;
  let adminUrl: string | null = null;
  let closed = false;

  // The admin routes in a scope of their own: its onRequest hook (metrics.token) covers every one of them
  // and nothing else on the app.
  const routes = (target: FastifyInstance) =>
    target.register(async (scope) => {
      scope.addHook('onRequest', adminAuth(config.metrics.token));
      scope.get('/metrics', async (_req, reply) => {
        const text = await exporter.scrape();
        reply.header('content-type', exporter.contentType).header('cache-control', 'no-store').send(text);
      });
      registerDashboard(scope, () => history.toJSON());
    });

  return {
    telemetry: recorder,
    async mount(app, source) {
      exporter.attach(source);
      history.start(source);
      const port = config.metrics.port;
      if (port === null) {
        await routes(app);
        return;
      }
      admin = Fastify({ ...SCHEMALESS, logger: false, forceCloseConnections: true });
      await routes(admin);
      admin.setNotFoundHandler((_req, reply) => {
        const missing = new GatewayErrors.ADMIN_NOT_FOUND();
        reply.code(missing.status).type('application/json').send(missing.body());
      });
      const listenHost = config.metrics.host ?? config.server.host;
      try {
        await admin.listen({ host: listenHost, port });
      } catch (err) {
        history.stop();
        await admin.close();
        admin = null;
        // Name the key: a busy admin port is a configuration problem like a busy server.port.
        throw new ConfigError(`metrics.port: cannot listen on ${listenHost}:${port} (${(err as Error).message})`);
      }
      const address = admin.server.address() as AddressInfo;
      const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      adminUrl = `http://${host}:${address.port}`;
      source.log.info({ url: adminUrl }, 'admin server listening (/metrics, /dashboard)');
    },
    adminUrl: () => adminUrl,
    async close() {
      if (closed) return;
      closed = true;
      history.stop();
      const server = admin;
      admin = null;
      adminUrl = null;
      if (server) await server.close();
    },
  };
}
