import { ConfigError, createLogger } from '@fanout/observability';
import { startGateway } from './service.js';
import { NativeUwsError } from './native-uws.js';

const logger = createLogger('gateway');
startGateway({}, undefined, process.argv.slice(2)).then(
  (gw) => {
    const stop = (signal: string) => {
      logger.info({ signal, node: gw.config.node }, 'shutting down');
      void gw.shutdown().then(() => process.exit(0));
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  },
  (err) => {
    if (err instanceof ConfigError) logger.fatal({ variable: err.variable }, err.message);
    else if (err instanceof NativeUwsError) logger.fatal(err.message);
    else logger.fatal({ err }, 'gateway failed to start');
    process.exit(1);
  },
);
