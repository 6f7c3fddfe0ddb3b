import { describe, expect, it } from 'vitest';
import { ConfigError } from '@fanout/observability';
import { marketDataConfig } from '../src/config.js';

const env = (vars: Record<string, string>): NodeJS.ProcessEnv => ({ KAFKA_BROKERS: '127.0.0.1:9092', ...vars });

function configError(vars: Record<string, string>): ConfigError {
  try {
    marketDataConfig({}, env(vars));
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('market-data config', () => {
  it('defaults to 20 real-looking symbols at 50 ticks/s', () => {
    const c = marketDataConfig({}, env({}));
    expect(c.symbols).toHaveLength(20);
    expect(c.symbols.slice(0, 4)).toEqual(['AAPL', 'MSFT', 'GOOG', 'AMZN']);
    expect(c.rate).toBe(50);
    expect(c.brokers).toEqual(['127.0.0.1:9092']);
    expect(c.topicBroadcast).toBe('fanout.broadcast');
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('reads the environment: count, explicit list, rate, brokers, topics', () => {
    expect(marketDataConfig({}, env({ FANOUT_SYMBOL_COUNT: '3' })).symbols).toEqual(['AAPL', 'MSFT', 'GOOG']);
    const c = marketDataConfig(
      {},
      env({
        FANOUT_SYMBOLS: 'TSLA, BRK.B,TSLA',
        FANOUT_RATE: '12.5',
        FANOUT_BROKERS: 'a:1,b:2',
        FANOUT_TOPIC_BROADCAST: 'x.b',
        FANOUT_TOPIC_USERS: 'x.u',
      }),
    );
    expect(c.symbols).toEqual(['TSLA', 'BRK.B']);
    expect(c.rate).toBe(12.5);
    expect(c.brokers).toEqual(['a:1', 'b:2']);
    expect([c.topicBroadcast, c.topicUsers]).toEqual(['x.b', 'x.u']);
  });

  it('names the variable at fault', () => {
    expect(configError({ KAFKA_BROKERS: '' }).variable).toBe('FANOUT_BROKERS');
    expect(configError({ FANOUT_RATE: '0' }).variable).toBe('FANOUT_RATE');
    expect(configError({ FANOUT_RATE: 'fast' }).variable).toBe('FANOUT_RATE');
    expect(configError({ FANOUT_SYMBOL_COUNT: '2.5' }).variable).toBe('FANOUT_SYMBOL_COUNT');
    expect(configError({ FANOUT_SYMBOL_COUNT: '0' }).variable).toBe('FANOUT_SYMBOL_COUNT');
    expect(configError({ FANOUT_SYMBOLS: 'AAPL,NO WAY' }).variable).toBe('FANOUT_SYMBOLS');
    expect(configError({ FANOUT_TOPIC_BROADCAST: 'bad topic' }).variable).toBe('FANOUT_TOPIC_BROADCAST');
    expect(configError({ FANOUT_TOPIC_USERS: 'fanout.broadcast' }).variable).toBe('FANOUT_TOPIC_USERS');
    expect(configError({ FANOUT_SLICE_MS: '0' }).variable).toBe('FANOUT_SLICE_MS');
    expect(configError({ FANOUT_MAX_IN_FLIGHT: '0' }).variable).toBe('FANOUT_MAX_IN_FLIGHT');
  });
});
