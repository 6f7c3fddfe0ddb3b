import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * JSON logs to stdout, one logger per process; parts take `logger.child({ module })`.
 * Level from FANOUT_LOG_LEVEL (default `info`; tests and benchmarks set `warn` or `silent`).
 */
export function createLogger(service: string, bindings: Record<string, unknown> = {}): Logger {
  return pino({
    name: service,
    level: process.env.FANOUT_LOG_LEVEL ?? 'info',
    base: { service, pid: process.pid, ...bindings },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}
