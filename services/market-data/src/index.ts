export {
  DEFAULT_SYMBOLS,
  MIN_MID,
  PriceModel,
  defaultSymbols,
  initialState,
  priceIncrement,
  seededRng,
  step,
  type Rng,
  type SymbolState,
  type Tick,
} from './ticks.js';
export {
  TickProducer,
  channelFor,
  startMarketData,
  type RunningMarketData,
  type TickProducerOptions,
  type TickProducerStats,
  type TickPublisher,
} from './producer.js';
export { MARKET_DATA_DEFAULTS, MAX_RATE, MAX_SYMBOLS, PRICES_NAMESPACE, marketDataConfig, type MarketDataConfig } from './config.js';
