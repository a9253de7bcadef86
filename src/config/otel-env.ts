import { ConfigError } from './error.js';

const SAMPLERS: Record<string, number | 'arg'> = {
  always_on: 1,
  parentbased_always_on: 1,
  always_off: 0,
  parentbased_always_off: 0,
  traceidratio: 'arg',
  parentbased_traceidratio: 'arg',
};

/**
 * The standard OpenTelemetry variables, read as a `tracing` overlay so they layer over the files like the
 * gateway's own variables. Tracing is opt-in: OTEL_TRACES_EXPORTER=otlp turns it on, `none` or
 * OTEL_SDK_DISABLED=true off. The exporter reads its own OTEL_EXPORTER_OTLP_* settings (headers,
 * timeout); the endpoint is read here so `tracing.endpoint` and the variables mean the same thing.
 */
export function otelOverlay(env: NodeJS.ProcessEnv): Record<string, unknown> | undefined {
  const out: Record<string, unknown> = {};
  const exporters = env.OTEL_TRACES_EXPORTER?.split(',').map((s) => s.trim().toLowerCase());
  if (exporters) {
    if (exporters.includes('otlp')) out.enabled = true;
    else if (exporters.every((e) => e === 'none' || e === '')) out.enabled = false;
    else
      throw new ConfigError(
        `OTEL_TRACES_EXPORTER: expected "otlp" or "none", got ${JSON.stringify(env.OTEL_TRACES_EXPORTER)}`,
      );
  }
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') out.enabled = false;
  if (env.OTEL_SERVICE_NAME) out.serviceName = env.OTEL_SERVICE_NAME;
  if (env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) out.endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  else if (env.OTEL_EXPORTER_OTLP_ENDPOINT)
    out.endpoint = `${env.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, '')}/v1/traces`;
  const samplerName = env.OTEL_TRACES_SAMPLER?.trim().toLowerCase();
  if (samplerName) {
    const ratio = SAMPLERS[samplerName];
    if (ratio === undefined)
      throw new ConfigError(
        `OTEL_TRACES_SAMPLER: expected one of ${Object.keys(SAMPLERS).join(', ')}, got ${JSON.stringify(samplerName)}`,
      );
    if (ratio === 'arg') {
      const arg = env.OTEL_TRACES_SAMPLER_ARG;
      const n = arg === undefined || arg.trim() === '' ? 1 : Number(arg);
      if (!Number.isFinite(n) || n < 0 || n > 1)
        throw new ConfigError(`OTEL_TRACES_SAMPLER_ARG: expected a number from 0 to 1, got ${JSON.stringify(arg)}`);
      out.sampleRatio = n;
    } else {
      out.sampleRatio = ratio;
    }
  }
  return Object.keys(out).length > 0 ? out : undefined;
}
