/**
 * Kafka client security, shared by every service, the producer library and the benchmarks: TLS
 * (a custom CA, an optional client certificate for mutual TLS, hostname verification always on)
 * and SASL (PLAIN, SCRAM-SHA-256/512, OAUTHBEARER through a token provider), read from
 * FANOUT_KAFKA_* variables and validated once, at start, into the options kafkajs takes.
 *
 * Every secret may come from the environment or from a file (`<NAME>_FILE`, e.g. a mounted
 * Kubernetes Secret); giving both is an error, so that nobody wonders which one won.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { SASLOptions } from 'kafkajs';
import type { ConnectionOptions } from 'node:tls';
import { ConfigError } from '@fanout/observability';
import { topicSettingsFromEnv, type TopicSettings } from './topics.js';

export type SecurityProtocol = 'plaintext' | 'ssl' | 'sasl_plaintext' | 'sasl_ssl';
export type SaslMechanism = 'plain' | 'scram-sha-256' | 'scram-sha-512' | 'oauthbearer';

/** An OAUTHBEARER token as kafkajs sends it. */
export interface OauthToken {
  value: string;
  extensions?: Record<string, string>;
}
export type OauthTokenProvider = () => Promise<OauthToken>;

export interface KafkaSecurity {
  protocol: SecurityProtocol;
  /** TLS options for node:tls, or undefined for a plaintext connection. */
  tls?: ConnectionOptions;
  sasl?: SASLOptions;
  /** What was configured, for logs and error messages (no secrets). */
  describe: {
    protocol: SecurityProtocol;
    mechanism?: SaslMechanism;
    username?: string;
    caFile?: string;
    clientCertificate?: boolean;
    tokenFrom?: string;
  };
}

const PROTOCOLS: readonly SecurityProtocol[] = ['plaintext', 'ssl', 'sasl_plaintext', 'sasl_ssl'];
const MECHANISMS: readonly SaslMechanism[] = ['plain', 'scram-sha-256', 'scram-sha-512', 'oauthbearer'];

/** The variables this module reads, in the order the docs list them. */
export const KAFKA_SECURITY_VARIABLES = [
  'FANOUT_KAFKA_SECURITY_PROTOCOL',
  'FANOUT_KAFKA_TLS_CA_FILE',
  'FANOUT_KAFKA_TLS_CERT_FILE',
  'FANOUT_KAFKA_TLS_KEY_FILE',
  'FANOUT_KAFKA_TLS_KEY_PASSWORD',
  'FANOUT_KAFKA_TLS_SERVERNAME',
  'FANOUT_KAFKA_SASL_MECHANISM',
  'FANOUT_KAFKA_SASL_USERNAME',
  'FANOUT_KAFKA_SASL_PASSWORD',
  'FANOUT_KAFKA_OAUTH_TOKEN_PROVIDER',
  'FANOUT_KAFKA_OAUTH_TOKEN_FILE',
] as const;

function plain(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[name]?.trim();
  return v ? v : undefined;
}

function readable(path: string, variable: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(
      variable,
      `cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); give the path of a readable file`,
    );
  }
}

/** A secret from `<name>` or from the file `<name>_FILE` (trailing newline dropped); both is an error. */
function secret(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const direct = env[name];
  const file = plain(env, `${name}_FILE`);
  if (direct !== undefined && direct !== '' && file) throw new ConfigError(name, `both ${name} and ${name}_FILE are set; keep one`);
  if (file) {
    const v = readable(file, `${name}_FILE`).replace(/\r?\n$/, '');
    if (v === '') throw new ConfigError(`${name}_FILE`, `${file} is empty`);
    return v;
  }
  return direct === '' ? undefined : direct;
}

function pemCertificates(path: string, variable: string): string {
  const pem = readable(path, variable);
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
  if (!blocks) throw new ConfigError(variable, `${path} holds no PEM certificate (-----BEGIN CERTIFICATE-----); give a PEM file`);
  for (const b of blocks) {
    try {
      new X509Certificate(b);
    } catch (err) {
      throw new ConfigError(variable, `${path} holds a certificate that does not parse: ${(err as Error).message}`);
    }
  }
  return pem;
}

function fail(variable: string, message: string): never {
  throw new ConfigError(variable, message);
}

/**
 * Reads and checks the FANOUT_KAFKA_* variables. Throws a ConfigError naming the variable for any
 * value that cannot work (unknown protocol, missing credentials, unreadable or unparsable PEM,
 * half a client certificate, both a value and its _FILE).
 */
export function kafkaSecurityFromEnv(env: NodeJS.ProcessEnv = process.env): KafkaSecurity {
  const rawProtocol = (plain(env, 'FANOUT_KAFKA_SECURITY_PROTOCOL') ?? 'plaintext').toLowerCase() as SecurityProtocol;
  if (!PROTOCOLS.includes(rawProtocol))
    fail(
      'FANOUT_KAFKA_SECURITY_PROTOCOL',
      `expected one of ${PROTOCOLS.join(', ')}, got ${JSON.stringify(env.FANOUT_KAFKA_SECURITY_PROTOCOL)}`,
    );
  const protocol = rawProtocol;
  const usesTls = protocol === 'ssl' || protocol === 'sasl_ssl';
  const usesSasl = protocol === 'sasl_plaintext' || protocol === 'sasl_ssl';
  const describe: KafkaSecurity['describe'] = { protocol };

  const caFile = plain(env, 'FANOUT_KAFKA_TLS_CA_FILE');
  const certFile = plain(env, 'FANOUT_KAFKA_TLS_CERT_FILE');
  const keyFile = plain(env, 'FANOUT_KAFKA_TLS_KEY_FILE');
  const keyPassword = secret(env, 'FANOUT_KAFKA_TLS_KEY_PASSWORD');
  const servername = plain(env, 'FANOUT_KAFKA_TLS_SERVERNAME');
  let tls: ConnectionOptions | undefined;
  if (usesTls) {
    // rejectUnauthorized stays true: there is no setting to turn verification off.
    tls = { rejectUnauthorized: true };
    if (caFile) {
      tls.ca = [pemCertificates(caFile, 'FANOUT_KAFKA_TLS_CA_FILE')];
      describe.caFile = caFile;
    }
    if (Boolean(certFile) !== Boolean(keyFile)) {
      fail(
        certFile ? 'FANOUT_KAFKA_TLS_KEY_FILE' : 'FANOUT_KAFKA_TLS_CERT_FILE',
        'mutual TLS needs both FANOUT_KAFKA_TLS_CERT_FILE and FANOUT_KAFKA_TLS_KEY_FILE',
      );
    }
    if (certFile && keyFile) {
      tls.cert = pemCertificates(certFile, 'FANOUT_KAFKA_TLS_CERT_FILE');
      const key = readable(keyFile, 'FANOUT_KAFKA_TLS_KEY_FILE');
      try {
        createPrivateKey(keyPassword !== undefined ? { key, passphrase: keyPassword } : key);
      } catch (err) {
        const v = /passphrase|decrypt|bad decrypt/i.test((err as Error).message)
          ? 'FANOUT_KAFKA_TLS_KEY_PASSWORD'
          : 'FANOUT_KAFKA_TLS_KEY_FILE';
        fail(v, `the private key in ${keyFile} cannot be read: ${(err as Error).message}`);
      }
      tls.key = key;
      if (keyPassword !== undefined) tls.passphrase = keyPassword;
      describe.clientCertificate = true;
    }
    if (servername) tls.servername = servername;
  } else {
    for (const v of [
      'FANOUT_KAFKA_TLS_CA_FILE',
      'FANOUT_KAFKA_TLS_CERT_FILE',
      'FANOUT_KAFKA_TLS_KEY_FILE',
      'FANOUT_KAFKA_TLS_SERVERNAME',
    ] as const) {
      if (plain(env, v)) fail(v, `is set but FANOUT_KAFKA_SECURITY_PROTOCOL is ${protocol}; set it to ssl or sasl_ssl, or unset ${v}`);
    }
  }

  const rawMechanism = plain(env, 'FANOUT_KAFKA_SASL_MECHANISM')?.toLowerCase().replace(/_/g, '-') as SaslMechanism | undefined;
  let sasl: SASLOptions | undefined;
  if (usesSasl) {
    if (!rawMechanism)
      fail('FANOUT_KAFKA_SASL_MECHANISM', `FANOUT_KAFKA_SECURITY_PROTOCOL is ${protocol}; choose one of ${MECHANISMS.join(', ')}`);
    if (!MECHANISMS.includes(rawMechanism))
      fail(
        'FANOUT_KAFKA_SASL_MECHANISM',
        `expected one of ${MECHANISMS.join(', ')}, got ${JSON.stringify(env.FANOUT_KAFKA_SASL_MECHANISM)}`,
      );
    describe.mechanism = rawMechanism;
    if (rawMechanism === 'oauthbearer') {
      const provider = oauthProvider(env);
      sasl = { mechanism: 'oauthbearer', oauthBearerProvider: provider.fn };
      describe.tokenFrom = provider.from;
    } else {
      const username = secret(env, 'FANOUT_KAFKA_SASL_USERNAME');
      const password = secret(env, 'FANOUT_KAFKA_SASL_PASSWORD');
      if (!username)
        fail(
          'FANOUT_KAFKA_SASL_USERNAME',
          `SASL ${rawMechanism.toUpperCase()} needs a user name (FANOUT_KAFKA_SASL_USERNAME or FANOUT_KAFKA_SASL_USERNAME_FILE)`,
        );
      if (!password)
        fail(
          'FANOUT_KAFKA_SASL_PASSWORD',
          `SASL ${rawMechanism.toUpperCase()} needs a password (FANOUT_KAFKA_SASL_PASSWORD or FANOUT_KAFKA_SASL_PASSWORD_FILE)`,
        );
      sasl = { mechanism: rawMechanism, username, password } as SASLOptions;
      describe.username = username;
    }
  } else if (rawMechanism) {
    fail(
      'FANOUT_KAFKA_SASL_MECHANISM',
      `is set but FANOUT_KAFKA_SECURITY_PROTOCOL is ${protocol}; set it to sasl_ssl (or sasl_plaintext), or unset the mechanism`,
    );
  }
  return { protocol, ...(tls ? { tls } : {}), ...(sasl ? { sasl } : {}), describe };
}

/**
 * OAUTHBEARER tokens come from one of two places:
 * - FANOUT_KAFKA_OAUTH_TOKEN_PROVIDER: an ES module (a path, or an installed package) whose default
 *   export is `async () => ({ value })`, called at every (re)authentication; the hook for a cloud
 *   provider's signer (e.g. Amazon MSK IAM through aws-msk-iam-sasl-signer-js, see docs/kafka.md);
 * - FANOUT_KAFKA_OAUTH_TOKEN_FILE: a file holding the token, read again at every authentication
 *   (a token that a sidecar or the platform refreshes).
 */
function oauthProvider(env: NodeJS.ProcessEnv): { fn: OauthTokenProvider; from: string } {
  const module = plain(env, 'FANOUT_KAFKA_OAUTH_TOKEN_PROVIDER');
  const file = plain(env, 'FANOUT_KAFKA_OAUTH_TOKEN_FILE');
  if (module && file)
    fail('FANOUT_KAFKA_OAUTH_TOKEN_PROVIDER', 'both FANOUT_KAFKA_OAUTH_TOKEN_PROVIDER and FANOUT_KAFKA_OAUTH_TOKEN_FILE are set; keep one');
  if (file) {
    readable(file, 'FANOUT_KAFKA_OAUTH_TOKEN_FILE');
    return {
      from: `file ${file}`,
      fn: async () => {
        const value = readFileSync(file, 'utf8').trim();
        if (!value) throw new ConfigError('FANOUT_KAFKA_OAUTH_TOKEN_FILE', `${file} is empty`);
        return { value };
      },
    };
  }
  if (!module)
    fail(
      'FANOUT_KAFKA_OAUTH_TOKEN_PROVIDER',
      'SASL OAUTHBEARER needs a token: set FANOUT_KAFKA_OAUTH_TOKEN_PROVIDER (a module whose default export returns { value }) or FANOUT_KAFKA_OAUTH_TOKEN_FILE',
    );
  const looksLikePath = module.startsWith('.') || isAbsolute(module);
  const specifier = looksLikePath ? pathToFileURL(resolve(module)).href : module;
  if (looksLikePath && !existsSync(resolve(module)))
    fail(
      'FANOUT_KAFKA_OAUTH_TOKEN_PROVIDER',
      `${resolve(module)} does not exist; give the path of an ES module (or an installed package name)`,
    );
  let loaded: Promise<OauthTokenProvider> | null = null;
  const load = () =>
    (loaded ??= import(specifier).then(
      (m: { default?: unknown }) => {
        if (typeof m.default !== 'function')
          throw new ConfigError(
            'FANOUT_KAFKA_OAUTH_TOKEN_PROVIDER',
            `${module} has no default export function; export default async () => ({ value: token })`,
          );
        return m.default as OauthTokenProvider;
      },
      (err: Error) => {
        throw new ConfigError('FANOUT_KAFKA_OAUTH_TOKEN_PROVIDER', `${module} could not be loaded: ${err.message}`);
      },
    ));
  return {
    from: `module ${module}`,
    fn: async () => {
      const token = await (await load())();
      if (!token || typeof token.value !== 'string' || token.value === '') {
        throw new ConfigError(
          'FANOUT_KAFKA_OAUTH_TOKEN_PROVIDER',
          `${module} returned no token; its default export must resolve to { value: string }`,
        );
      }
      return token;
    },
  };
}

/** Everything a service needs to reach Kafka safely besides the brokers, validated at start. */
export interface KafkaClientSettings {
  security: KafkaSecurity;
  topics: TopicSettings;
}

export function kafkaClientSettings(env: NodeJS.ProcessEnv = process.env): KafkaClientSettings {
  return { security: kafkaSecurityFromEnv(env), topics: topicSettingsFromEnv(env) };
}

/** The `ssl` and `sasl` options of a kafkajs client for these settings (spread into `new Kafka({...})`). */
export function kafkajsSecurity(security: KafkaSecurity = kafkaSecurityFromEnv()): { ssl?: ConnectionOptions; sasl?: SASLOptions } {
  return { ...(security.tls ? { ssl: security.tls } : {}), ...(security.sasl ? { sasl: security.sasl } : {}) };
}
