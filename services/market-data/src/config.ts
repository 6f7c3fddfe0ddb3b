import { loadConfig, ConfigError, resolveBrokers, checkInteger, checkPort } from '@fanout/observability';
import { kafkaClientSettings, type KafkaClientSettings } from '@fanout/kafka';
import { isValidChannel } from '@fanout/protocol';
import { defaultSymbols } from './ticks.js';

/** Ticks for symbol S go to channel `prices:S`. */
export const PRICES_NAMESPACE = 'prices';

/**
 * Market-data settings; each maps to FANOUT_<UPPER_SNAKE> (e.g. symbolCount -> FANOUT_SYMBOL_COUNT).
 */
export const MARKET_DATA_DEFAULTS = {
  /** Kafka bootstrap servers (KAFKA_BROKERS is also read). */
  brokers: [] as string[],
  /** Explicit comma-separated symbols (e.g. `AAPL,MSFT`); when set, symbolCount is ignored. */
  symbols: [] as string[],
  /** How many of the default symbols (AAPL, MSFT, GOOG, ...) to publish when no list is given. */
  symbolCount: 20,
  /** Ticks per second, in total across all symbols. */
  rate: 50,
  /** Broadcast topic name (where prices:* channels go). */
  topicBroadcast: 'fanout.broadcast',
  /** Users topic name (created alongside; market data writes nothing there). */
  topicUsers: 'fanout.users',
  /** Pacing timer period in milliseconds; each slice publishes the ticks that came due. */
  sliceMs: 20,
  /** Publishes awaiting Kafka's acknowledgement, at most; ticks due beyond it are skipped. */
  maxInFlight: 5000,
  /** Seconds between rate log lines. */
  logIntervalS: 5,
  /** Seed for the price model; 0 picks a random one. */
  seed: 0,
  /** HTTP listen host and port for /metrics, /healthz and /readyz; port 0 picks a free one. */
  host: '127.0.0.1',
  port: 9100,
};

export type MarketDataConfig = typeof MARKET_DATA_DEFAULTS;

/** Kafka topic names: 1 to 249 of [A-Za-z0-9._-], not `.` or `..`. */
const TOPIC_RE = /^[A-Za-z0-9._-]{1,249}$/;

export const MAX_SYMBOLS = 10_000;
export const MAX_RATE = 1_000_000;

/**
 * Loads and validates the settings. `symbols` in the result is always the resolved list (the
 * explicit one, or the first symbolCount defaults), and `brokers` is never empty.
 */
export function marketDataConfig(
  overrides: Partial<MarketDataConfig> & { kafka?: KafkaClientSettings } = {},
  env: NodeJS.ProcessEnv = process.env,
): Readonly<MarketDataConfig & { kafka: KafkaClientSettings }> {
  const { kafka: kafkaOverride, ...rest } = overrides;
  const c = loadConfig(MARKET_DATA_DEFAULTS, rest, env);
  const brokers = resolveBrokers(c.brokers, env);

  checkPort(c.port);
  checkInteger(c.symbolCount, 'FANOUT_SYMBOL_COUNT', 1, MAX_SYMBOLS);
  const symbols = c.symbols.length > 0 ? [...new Set(c.symbols)] : defaultSymbols(c.symbolCount);
  const bad = symbols.find((s) => !isValidChannel(`${PRICES_NAMESPACE}:${s}`));
  if (bad !== undefined) {
    throw new ConfigError(
      'FANOUT_SYMBOLS',
      `${JSON.stringify(bad.slice(0, 80))} is not a valid symbol; symbols are 1 to 200 of [A-Za-z0-9._=@-], comma-separated`,
    );
  }
  if (symbols.length > MAX_SYMBOLS) throw new ConfigError('FANOUT_SYMBOLS', `at most ${MAX_SYMBOLS} symbols`);

  if (!(c.rate > 0) || c.rate > MAX_RATE)
    throw new ConfigError('FANOUT_RATE', `must be a number of ticks per second above 0 and at most ${MAX_RATE}`);
  checkInteger(c.sliceMs, 'FANOUT_SLICE_MS', 1, 1000, '(milliseconds)');
  checkInteger(c.maxInFlight, 'FANOUT_MAX_IN_FLIGHT', 1);
  if (!(c.logIntervalS > 0)) throw new ConfigError('FANOUT_LOG_INTERVAL_S', 'must be a number of seconds above 0');
  checkInteger(c.seed, 'FANOUT_SEED', 0, 0xffffffff, '(0 picks a random seed)');

  for (const [key, name] of [
    ['topicBroadcast', 'FANOUT_TOPIC_BROADCAST'],
    ['topicUsers', 'FANOUT_TOPIC_USERS'],
  ] as const) {
    const t = c[key];
    if (!TOPIC_RE.test(t) || t === '.' || t === '..')
      throw new ConfigError(name, `${JSON.stringify(t.slice(0, 80))} is not a Kafka topic name (1 to 249 of [A-Za-z0-9._-])`);
  }
  if (c.topicBroadcast === c.topicUsers) throw new ConfigError('FANOUT_TOPIC_USERS', 'must differ from FANOUT_TOPIC_BROADCAST');

  return Object.freeze({ ...c, kafka: kafkaOverride ?? kafkaClientSettings(env), brokers, symbols });
}
