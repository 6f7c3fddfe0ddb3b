/**
 * The process shell every service's main.ts shares (after the kafkajs examples): start, then on
 * SIGTERM or SIGINT shut down gracefully within a hard limit; a second signal exits at once. A
 * start-up failure exits 1 with the reason logged; a ConfigError (a bad setting, or Kafka refusing
 * the credentials or certificates) names its variable and exits 78 (EX_CONFIG), which tells an
 * operator, or a supervisor, that restarting without a change will not help.
 */
import type { Logger } from 'pino';
import { ConfigError } from './config.js';

/** sysexits.h: a configuration error. */
export const EX_CONFIG = 78;

export interface Stoppable {
  shutdown(): Promise<void>;
}

export function runService<T extends Stoppable>(opts: {
  name: string;
  logger: Logger;
  start: () => Promise<T>;
  /**
   * Hard limit for the shutdown, in ms (the service's own drain should end well before): a number,
   * or taken from the started service (its validated config), default 30 s.
   */
  graceMs?: number | ((service: T) => number);
  onStarted?: (service: T) => void;
}): void {
  const { name, logger } = opts;
  // A signal may come while the service is still starting (a deploy that gives up on a pod, or
  // a service that is ready before its start has finished): it is kept and acted on once started.
  let pending: string | null = null;
  const early = (signal: string) => () => {
    logger.info({ signal }, 'signal while starting: shutting down once started');
    pending = signal;
  };
  const earlyTerm = early('SIGTERM');
  const earlyInt = early('SIGINT');
  process.once('SIGTERM', earlyTerm);
  process.once('SIGINT', earlyInt);
  opts.start().then(
    (service) => {
      process.removeListener('SIGTERM', earlyTerm);
      process.removeListener('SIGINT', earlyInt);
      opts.onStarted?.(service);
      const graceMs = typeof opts.graceMs === 'function' ? opts.graceMs(service) : (opts.graceMs ?? 30_000);
      const stop = (signal: string) => {
        logger.info({ signal }, 'shutting down');
        const hardStop = setTimeout(() => {
          logger.error({ grace_ms: graceMs }, 'shutdown exceeded the grace period; exiting');
          process.exit(1);
        }, graceMs);
        hardStop.unref();
        void service.shutdown().then(() => process.exit(0));
        const now = () => process.exit(130);
        process.once('SIGTERM', now);
        process.once('SIGINT', now);
      };
      if (pending) return stop(pending);
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    },
    (err: unknown) => {
      if (err instanceof ConfigError) {
        logger.fatal({ variable: err.variable }, err.message);
        process.exit(EX_CONFIG);
      } else if (err instanceof Error && err.name !== 'Error') logger.fatal({ err }, `${name} failed to start: ${err.message}`);
      else logger.fatal({ err }, `${name} failed to start`);
      process.exit(1);
    },
  );
}
