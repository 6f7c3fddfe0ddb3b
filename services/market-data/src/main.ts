import { createLogger, runService } from '@fanout/observability';
import { startMarketData } from './producer.js';

const logger = createLogger('market-data');
runService({
  name: 'market data',
  logger,
  start: () => startMarketData({}, logger),
  // Acknowledgements in flight and the producer disconnect.
  graceMs: 15_000,
  onStarted: (md) =>
    logger.info({ symbols: md.config.symbols.length, rate: md.config.rate, topic: md.config.topicBroadcast }, 'market data running'),
});
