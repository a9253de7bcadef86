import type { FastifyInstance } from 'fastify';
import type { GatewayParts } from '../app.js';
import type { GatewayConfig } from '../config/index.js';
import { noTelemetry, type Telemetry } from './telemetry.js';

export type { Telemetry } from './telemetry.js';

/** Telemetry that feeds Prometheus and the dashboard, plus the admin routes that show them. */
export interface Metrics {
  telemetry: Telemetry;
  /** Adds /metrics and /dashboard to the main app, or starts the admin server on metrics.port. */
  mount(app: FastifyInstance, parts: GatewayParts): Promise<void>;
  /** URL of the separate admin server, when there is one. */
  adminUrl(): string | null;
  close(): Promise<void>;
}

export function createMetrics(_config: GatewayConfig): Metrics {
  return {
    telemetry: noTelemetry,
    async mount() {},
    adminUrl: () => null,
    async close() {},
  };
}
