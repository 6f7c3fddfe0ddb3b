import { ConfigError, createLogger } from '@fanout/observability';
import { startRouter } from './service.js';

const logger = createLogger('router');
startRouter({}, logger).then(
  (r) => {
    const stop = (signal: string) => {
      logger.info({ signal }, 'shutting down');
      void r.shutdown().then(() => process.exit(0));
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  },
  (err) => {
    if (err instanceof ConfigError) logger.fatal({ variable: err.variable }, err.message);
    else logger.fatal({ err }, 'router failed to start');
    process.exit(1);
  },
);
