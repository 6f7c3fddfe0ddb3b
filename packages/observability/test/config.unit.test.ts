/**
 * The shared configuration loader: defaults, environment variables mapped by a fixed rule and
 * converted to each default's type, overrides, and errors that name the variable.
 */
import { describe, expect, it } from 'vitest';
import {
  checkClientAddressHeader,
  checkInteger,
  checkIntegers,
  checkPort,
  ConfigError,
  envName,
  loadConfig,
  REGION_RE,
  resolveBrokers,
} from '../src/config.js';

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

describe('checkInteger and checkIntegers', () => {
  it('take integers within the range and name the variable otherwise, with one message', () => {
    for (const ok of [1, 5, 10]) expect(() => checkInteger(ok, 'FANOUT_X', 1, 10)).not.toThrow();
    for (const bad of [0, 11, 1.5, Number.NaN]) {
      const err = configError(() => checkInteger(bad, 'FANOUT_X', 1, 10));
      expect(err.message).toBe('FANOUT_X: must be an integer from 1 to 10');
    }
    expect(configError(() => checkInteger(-1, 'FANOUT_Y', 0)).message).toBe(
      `FANOUT_Y: must be an integer from 0 to ${Number.MAX_SAFE_INTEGER}`,
    );
    expect(configError(() => checkInteger(-1, 'FANOUT_Y', 0, 9, '(0: off)')).message).toBe(
      'FANOUT_Y: must be an integer from 0 to 9 (0: off)',
    );
  });

  it('check each listed setting in order under its environment variable', () => {
    const c = { queueMaxMessages: 0, lagProbeMs: 50 };
    expect(() => checkIntegers(c, [['lagProbeMs', 10, 100]])).not.toThrow();
    expect(
      configError(() =>
        checkIntegers(c, [
          ['lagProbeMs', 100],
          ['queueMaxMessages', 1],
        ]),
      ).variable,
    ).toBe('FANOUT_LAG_PROBE_MS');
    expect(configError(() => checkIntegers(c, [['queueMaxMessages', 1]])).variable).toBe('FANOUT_QUEUE_MAX_MESSAGES');
  });
});

describe('the shared name checks', () => {
  it('take region names and client-address headers the same way in every service', () => {
    for (const r of ['eu', 'us-east-1', 'a'.repeat(32)]) expect(REGION_RE.test(r), r).toBe(true);
    for (const r of ['EU', 'eu_1', '', 'a'.repeat(33)]) expect(REGION_RE.test(r), r).toBe(false);
    for (const h of ['', 'x-forwarded-for', 'X-Real-IP']) expect(() => checkClientAddressHeader(h)).not.toThrow();
    expect(configError(() => checkClientAddressHeader('x forwarded')).variable).toBe('FANOUT_CLIENT_ADDRESS_HEADER');
  });
});
