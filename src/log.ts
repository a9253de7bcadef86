import { type Logger, pino } from 'pino';
import type { LogConfig } from './config/index.js';

/** Credentials are never written, whatever a log call is handed. */
export const REDACT = [
  'authorization',
  'cookie',
  'api-key',
  'headers.authorization',
  'headers.cookie',
  'headers["api-key"]',
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["api-key"]',
  'res.headers["set-cookie"]',
];

export function createLogger(config: LogConfig, destination?: NodeJS.WritableStream): Logger {
  const pretty = config.pretty === 'auto' ? process.stdout.isTTY === true && !destination : config.pretty;
  const options = { level: config.level, redact: { paths: REDACT, censor: '[redacted]' }, base: undefined };
  if (pretty) {
    return pino({
      ...options,
      transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } },
    });
  }
  return destination ? pino(options, destination as pino.DestinationStream) : pino(options);
}
