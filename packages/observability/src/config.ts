/**
 * Configuration: one defaults object per service; each key maps to an environment variable by a
 * fixed rule (`maxEventBytes` -> `FANOUT_MAX_EVENT_BYTES`). Values are validated at start-up and the
 * result frozen. A bad setting stops the process with a ConfigError naming the variable.
 */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
  }
}

export function envName(key: string): string {
  return 'FANOUT_' + key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

/**
 * Kafka bootstrap servers: the service's own setting, else KAFKA_BROKERS; none is a ConfigError.
 */
export function resolveBrokers(configured: readonly string[], env: NodeJS.ProcessEnv = process.env): string[] {
  const brokers =
    configured.length > 0
      ? [...configured]
      : (env.KAFKA_BROKERS ?? '')
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
  if (brokers.length === 0)
    throw new ConfigError('FANOUT_BROKERS', 'no Kafka brokers configured; set FANOUT_BROKERS or KAFKA_BROKERS to host:port[,host:port]');
  return brokers;
}

/** A listen port setting: an integer 0-65535 (0 picks a free port). */
export function checkPort(port: number, variable = 'FANOUT_PORT'): void {
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(variable, 'must be a TCP port (0-65535)');
}

/**
 * An integer setting within [min, max]; anything else (a fraction, out of range, NaN) is a
 * ConfigError naming `variable`: "must be an integer from <min> to <max>", then `note` if given
 * (what a value means, e.g. "(0: no limit)"). The one range check every service's config uses.
 */
export function checkInteger(value: number, variable: string, min: number, max: number = Number.MAX_SAFE_INTEGER, note?: string): void {
  if (!Number.isInteger(value) || value < min || value > max)
    throw new ConfigError(variable, `must be an integer from ${min} to ${max}${note ? ` ${note}` : ''}`);
}

/** A region name (the gateway's FANOUT_REGION, each of the router's FANOUT_REGIONS): 1 to 32 of [a-z0-9-]. */
export const REGION_RE = /^[a-z0-9-]{1,32}$/;

/** FANOUT_CLIENT_ADDRESS_HEADER (gateway, router, dispatcher): a header name, or empty for none. */
export function checkClientAddressHeader(header: string): void {
  if (header && !/^[a-z0-9-]{1,64}$/i.test(header))
    throw new ConfigError('FANOUT_CLIENT_ADDRESS_HEADER', 'must be a header name, e.g. x-forwarded-for, or empty');
}

/** An integer range per setting of a config: `[key, min]` or `[key, min, max]` (max: Number.MAX_SAFE_INTEGER). */
export type IntegerRanges<T> = readonly (readonly [key: keyof T & string, min: number, max?: number])[];

/** checkInteger for each setting listed, in order, naming its environment variable (`envName(key)`). */
export function checkIntegers<T extends object>(config: T, ranges: IntegerRanges<T>): void {
  for (const [key, min, max] of ranges) checkInteger(config[key] as number, envName(key), min, max);
}

type Shape = Record<string, string | number | boolean | string[]>;

/**
 * Overlays `env` onto `defaults` (and `overrides` onto that), converting each value to the type of
 * its default. Numbers must be plain non-negative decimals (`25`, `0.5`); booleans are true/false/1/0; lists are
 * comma-separated.
 */
export function loadConfig<T extends Shape>(defaults: T, overrides: Partial<T> = {}, env: NodeJS.ProcessEnv = process.env): Readonly<T> {
  const out: Record<string, unknown> = { ...defaults };
  for (const [key, def] of Object.entries(defaults)) {
    const name = envName(key);
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    if (typeof def === 'number') {
      // Plain decimal only: Number() would also take " " (as 0, which turns some limits off), hex
      // ("0x10") and exponents.
      const n = /^\d+(\.\d+)?$/.test(raw) ? Number(raw) : NaN;
      if (!Number.isFinite(n)) throw new ConfigError(name, `expected a non-negative number, got ${JSON.stringify(raw)}`);
      out[key] = n;
    } else if (typeof def === 'boolean') {
      if (!/^(true|false|1|0)$/i.test(raw)) throw new ConfigError(name, `expected true or false, got ${JSON.stringify(raw)}`);
      out[key] = /^(true|1)$/i.test(raw);
    } else if (Array.isArray(def)) {
      out[key] = raw
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
    } else {
      out[key] = raw;
    }
  }
  for (const [key, v] of Object.entries(overrides)) if (v !== undefined) out[key] = v;
  return Object.freeze(out) as Readonly<T>;
}
