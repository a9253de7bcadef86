import type { GatewayConfig } from '../config/index.js';
import type { RequestTrace, Tracing } from './types.js';

export type { RequestTrace, Tracing };

/** Tracing off: nothing is made per request (the pipeline checks `enabled` once and keeps `ex.trace` null). */
const noTracing: Tracing = {
  enabled: false,
  start() {
    throw new Error('tracing is off');
  },
  async flush() {},
  async shutdown() {},
};

/** OpenTelemetry tracing when `tracing.enabled` (or OTEL_TRACES_EXPORTER=otlp), else nothing at all. */
export async function createTracing(config: GatewayConfig): Promise<Tracing> {
  if (!config.tracing.enabled) return noTracing;
  // Loaded only when on: the OpenTelemetry SDK is about 15 MiB of an idle sidecar's memory.
  const { OtelTracing } = await import('./otel.js');
  return new OtelTracing(config.tracing, config.upstream.baseUrl);
}
