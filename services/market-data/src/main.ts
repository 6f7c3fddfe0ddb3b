import { ConfigError, createLogger } from '@fanout/observability';
import { startMarketData } from './producer.js';

/** Hard limit for a clean stop (acknowledgements in flight, producer disconnect). */
const STOP_GRACE_MS = 15_000;

const logger = createLogger('market-data');
startMarketData({}, logger).then(
  (md) => {
    logger.info({ symbols: md.config.symbols.length, rate: md.config.rate, topic: md.config.topicBroadcast }, 'market data running');
    const stop = (signal: string) => {
      logger.info({ signal }, 'stopping');
      const hardStop = setTimeout(() => {
        logger.error({ grace_ms: STOP_GRACE_MS }, 'stop exceeded the grace period; exiting');
        process.exit(1);
      }, STOP_GRACE_MS);
      hardStop.unref();
      void md.shutdown().then(() => process.exit(0));
      // A second signal does not wait.
      const now = () => process.exit(130);
      process.once('SIGTERM', now);
      process.once('SIGINT', now);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  },
  (err) => {
    if (err instanceof ConfigError) logger.fatal({ variable: err.variable }, err.message);
    else logger.fatal({ err }, 'market data failed to start');
    process.exit(1);
  },
);
