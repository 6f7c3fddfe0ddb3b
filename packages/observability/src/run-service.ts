/**
 * The process shell every service's main.ts shares (after the kafkajs examples): start, then on
 * SIGTERM or SIGINT shut down gracefully within a hard limit; a second signal exits at once. A
 * start-up failure exits 1 with the reason logged; a ConfigError names its variable.
 */
import type { Logger } from 'pino';
import { ConfigError } from './config.js';

export interface Stoppable {
  shutdown(): Promise<void>;
}

export function runService<T extends Stoppable>(opts: {
  name: string;
  logger: Logger;
  start: () => Promise<T>;
  /** Hard limit for the shutdown, in ms (the service's own drain should end well before). */
  graceMs?: number;
  onStarted?: (service: T) => void;
}): void {
  const { name, logger } = opts;
  opts.start().then(
    (service) => {
      opts.onStarted?.(service);
      const stop = (signal: string) => {
        logger.info({ signal }, 'shutting down');
        const hardStop = setTimeout(() => {
          logger.error({ grace_ms: opts.graceMs ?? 30_000 }, 'shutdown exceeded the grace period; exiting');
          process.exit(1);
        }, opts.graceMs ?? 30_000);
        hardStop.unref();
        void service.shutdown().then(() => process.exit(0));
        const now = () => process.exit(130);
        process.once('SIGTERM', now);
        process.once('SIGINT', now);
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    },
    (err: unknown) => {
      if (err instanceof ConfigError) logger.fatal({ variable: err.variable }, err.message);
      else if (err instanceof Error && err.name !== 'Error') logger.fatal({ err }, `${name} failed to start: ${err.message}`);
      else logger.fatal({ err }, `${name} failed to start`);
      process.exit(1);
    },
  );
}
