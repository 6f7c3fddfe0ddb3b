/**
 * The shared configuration loader: defaults, environment variables mapped by a fixed rule and
 * converted to each default's type, overrides, and errors that name the variable.
 */
import { describe, expect, it } from 'vitest';
import { checkPort, ConfigError, envName, loadConfig, resolveBrokers } from '../src/config.js';

const DEFAULTS = { port: 9000, ratio: 0.5, servePage: true, brokers: [] as string[], region: 'local' };

/** The ConfigError `fn` throws (fails the test if it throws something else or nothing). */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('envName', () => {
  it('maps a camelCase key to FANOUT_UPPER_SNAKE', () => {
    expect(envName('port')).toBe('FANOUT_PORT');
    expect(envName('maxEventBytes')).toBe('FANOUT_MAX_EVENT_BYTES');
    expect(envName('idleTimeoutS')).toBe('FANOUT_IDLE_TIMEOUT_S');
    expect(envName('ratePerS')).toBe('FANOUT_RATE_PER_S');
    expect(envName('http2Port')).toBe('FANOUT_HTTP2_PORT');
  });
});

describe('loadConfig', () => {
  it('returns the defaults, frozen, when the environment sets nothing', () => {
    const c = loadConfig(DEFAULTS, {}, {});
    expect(c).toEqual(DEFAULTS);
    expect(Object.isFrozen(c)).toBe(true);
    expect(c).not.toBe(DEFAULTS);
  });

  it('converts each variable to the type of its default', () => {
    const c = loadConfig(
      DEFAULTS,
      {},
      { FANOUT_PORT: '8080', FANOUT_RATIO: '0.25', FANOUT_SERVE_PAGE: 'false', FANOUT_BROKERS: ' a:9092, b:9092 ,,', FANOUT_REGION: 'eu' },
    );
    expect(c).toEqual({ port: 8080, ratio: 0.25, servePage: false, brokers: ['a:9092', 'b:9092'], region: 'eu' });
  });

  it('reads booleans as true/false/1/0 in any case', () => {
    const read = (v: string) => loadConfig(DEFAULTS, {}, { FANOUT_SERVE_PAGE: v }).servePage;
    expect(['true', 'TRUE', '1', 'True'].map(read)).toEqual([true, true, true, true]);
    expect(['false', 'FALSE', '0'].map(read)).toEqual([false, false, false]);
  });

  it('treats an empty variable as unset', () => {
    expect(loadConfig(DEFAULTS, {}, { FANOUT_PORT: '', FANOUT_REGION: '' })).toEqual(DEFAULTS);
  });

  it('ignores variables that name no setting', () => {
    expect(loadConfig(DEFAULTS, {}, { FANOUT_OTHER: 'x', PORT: '1' })).toEqual(DEFAULTS);
  });

  it('lets overrides win over the environment', () => {
    const c = loadConfig(DEFAULTS, { port: 1234, region: undefined }, { FANOUT_PORT: '8080', FANOUT_REGION: 'eu' });
    expect(c.port).toBe(1234);
    expect(c.region).toBe('eu');
  });

  it.each([
    ['FANOUT_PORT', 'abc', 'expected a non-negative number, got "abc"'],
    ['FANOUT_PORT', '-1', 'expected a non-negative number, got "-1"'],
    ['FANOUT_RATIO', 'Infinity', 'expected a non-negative number, got "Infinity"'],
    ['FANOUT_PORT', ' ', 'expected a non-negative number, got " "'],
    ['FANOUT_PORT', '0x10', 'expected a non-negative number, got "0x10"'],
    ['FANOUT_PORT', '1e3', 'expected a non-negative number, got "1e3"'],
    ['FANOUT_RATIO', '.5', 'expected a non-negative number, got ".5"'],
    ['FANOUT_SERVE_PAGE', 'yes', 'expected true or false, got "yes"'],
  ])('rejects %s=%s with a ConfigError naming the variable', (name, value, message) => {
    const err = configError(() => loadConfig(DEFAULTS, {}, { [name]: value }));
    expect(err.variable).toBe(name);
    expect(err.message).toBe(`${name}: ${message}`);
    expect(err.name).toBe('ConfigError');
  });
});

describe('resolveBrokers', () => {
  it('takes the configured brokers first, then KAFKA_BROKERS', () => {
    expect(resolveBrokers(['a:1'], { KAFKA_BROKERS: 'b:2' })).toEqual(['a:1']);
    expect(resolveBrokers([], { KAFKA_BROKERS: ' b:2 , c:3,' })).toEqual(['b:2', 'c:3']);
  });

  it('names FANOUT_BROKERS when there are none', () => {
    expect(configError(() => resolveBrokers([], {})).variable).toBe('FANOUT_BROKERS');
    expect(configError(() => resolveBrokers([], { KAFKA_BROKERS: ' , ' })).variable).toBe('FANOUT_BROKERS');
  });
});

describe('checkPort', () => {
  it('accepts 0 to 65535 and names the variable otherwise', () => {
    for (const ok of [0, 1, 65535]) expect(() => checkPort(ok)).not.toThrow();
    for (const bad of [-1, 65536, 80.5, Number.NaN]) expect(configError(() => checkPort(bad)).variable).toBe('FANOUT_PORT');
    expect(configError(() => checkPort(70000, 'FANOUT_ADMIN_PORT')).variable).toBe('FANOUT_ADMIN_PORT');
  });
});
