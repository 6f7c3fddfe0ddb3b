import { createLogger, ConfigError } from '@fanout/observability';
import { startPublisher } from './service.js';

const logger = createLogger('publisher');
startPublisher({}, logger).then(
  (p) => {
    const stop = (signal: string) => {
      logger.info({ signal }, 'draining');
      void p.shutdown().then(() => process.exit(0));
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  },
  (err) => {
    if (err instanceof ConfigError) logger.fatal({ variable: err.variable }, err.message);
    else logger.fatal({ err }, 'publisher failed to start');
    process.exit(1);
  },
);
