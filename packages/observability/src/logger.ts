import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * JSON logs to stdout, one logger per process; parts take `logger.child({ module })`.
 * Level from FANOUT_LOG_LEVEL (default `info`; tests and benchmarks set `warn` or `silent`).
 */
const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function createLogger(service: string, bindings: Record<string, unknown> = {}): Logger {
  const level = process.env.FANOUT_LOG_LEVEL || 'info';
  if (!LEVELS.includes(level)) {
    // Configuration errors must name the setting; pino would throw a bare stack trace.
    throw new Error(`FANOUT_LOG_LEVEL: must be one of ${LEVELS.join(', ')}, got ${JSON.stringify(level)}`);
  }
  return pino({
    name: service,
    level,
    base: { service, pid: process.pid, ...bindings },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}
