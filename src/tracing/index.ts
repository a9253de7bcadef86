import type { GatewayConfig } from '../config/index.js';
import { OtelTracing } from './otel.js';
import type { RequestTrace, Tracing } from './types.js';

export { ATTR } from './otel.js';
export type { RequestTrace, Tracing };

/** Tracing off: nothing is made per request (the pipeline checks `enabled` once and keeps `ex.trace` null). */
export const noTracing: Tracing = {
  enabled: false,
  start() {
    throw new Error('tracing is off');
  },
  async flush() {},
  async shutdown() {},
};

/** OpenTelemetry tracing when `tracing.enabled` (or OTEL_TRACES_EXPORTER=otlp), else nothing at all. */
export function createTracing(config: GatewayConfig): Tracing {
  return config.tracing.enabled ? new OtelTracing(config.tracing, config.upstream.baseUrl) : noTracing;
}
