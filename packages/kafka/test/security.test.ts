import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '@fanout/observability';
import { kafkaSecurityFromEnv, topicSettingsFromEnv } from '../src/index.js';

let dir: string;
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fanout-security-'));
  // A self-signed certificate and an encrypted private key, made with openssl like an operator would.
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
      '-days',
      '2',
      '-subj',
      '/CN=test',
    ],
    { stdio: 'ignore' },
  );
  execFileSync(
    'openssl',
    ['pkcs8', '-topk8', '-in', join(dir, 'key.pem'), '-out', join(dir, 'key-enc.pem'), '-passout', 'pass:s3cret', '-v2', 'aes-256-cbc'],
    { stdio: 'ignore' },
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('kafkaSecurityFromEnv', () => {
  it('is plaintext with neither TLS nor SASL by default', () => {
    const s = kafkaSecurityFromEnv({});
    expect(s.protocol).toBe('plaintext');
    expect(s.tls).toBeUndefined();
    expect(s.sasl).toBeUndefined();
  });

  it('refuses an unknown protocol, naming the variable', () => {
    expect(configError(() => kafkaSecurityFromEnv({ FANOUT_KAFKA_SECURITY_PROTOCOL: 'tls' })).variable).toBe(
      'FANOUT_KAFKA_SECURITY_PROTOCOL',
    );
  });

  it("accepts Kafka's upper-case names and verifies certificates always", () => {
    const s = kafkaSecurityFromEnv({ FANOUT_KAFKA_SECURITY_PROTOCOL: 'SSL' });
    expect(s.protocol).toBe('ssl');
    expect(s.tls).toEqual({ rejectUnauthorized: true });
  });

  it('reads SCRAM credentials from the environment or from files, not both', () => {
    const base = { FANOUT_KAFKA_SECURITY_PROTOCOL: 'sasl_ssl', FANOUT_KAFKA_SASL_MECHANISM: 'SCRAM_SHA_512' };
    const s = kafkaSecurityFromEnv({
      ...base,
      FANOUT_KAFKA_SASL_USERNAME: 'app',
      FANOUT_KAFKA_SASL_PASSWORD_FILE: file('pw', 'from-file\n'),
    });
    expect(s.sasl).toEqual({ mechanism: 'scram-sha-512', username: 'app', password: 'from-file' });
    expect(s.describe).toMatchObject({ protocol: 'sasl_ssl', mechanism: 'scram-sha-512', username: 'app' });
    expect(JSON.stringify(s.describe)).not.toContain('from-file');
    const both = configError(() =>
      kafkaSecurityFromEnv({
        ...base,
        FANOUT_KAFKA_SASL_USERNAME: 'app',
        FANOUT_KAFKA_SASL_PASSWORD: 'x',
        FANOUT_KAFKA_SASL_PASSWORD_FILE: file('pw2', 'y'),
      }),
    );
    expect(both.variable).toBe('FANOUT_KAFKA_SASL_PASSWORD');
    expect(configError(() => kafkaSecurityFromEnv({ ...base, FANOUT_KAFKA_SASL_USERNAME: 'app' })).variable).toBe(
      'FANOUT_KAFKA_SASL_PASSWORD',
    );
    expect(configError(() => kafkaSecurityFromEnv({ ...base, FANOUT_KAFKA_SASL_PASSWORD: 'x' })).variable).toBe(
      'FANOUT_KAFKA_SASL_USERNAME',
    );
    const missing = configError(() =>
      kafkaSecurityFromEnv({ ...base, FANOUT_KAFKA_SASL_USERNAME: 'app', FANOUT_KAFKA_SASL_PASSWORD_FILE: join(dir, 'nope') }),
    );
    expect(missing.variable).toBe('FANOUT_KAFKA_SASL_PASSWORD_FILE');
    expect(missing.message).toMatch(/ENOENT/);
  });

  it('needs a mechanism for SASL, and no SASL or TLS settings without the protocol for them', () => {
    expect(configError(() => kafkaSecurityFromEnv({ FANOUT_KAFKA_SECURITY_PROTOCOL: 'sasl_ssl' })).variable).toBe(
      'FANOUT_KAFKA_SASL_MECHANISM',
    );
    expect(
      configError(() => kafkaSecurityFromEnv({ FANOUT_KAFKA_SECURITY_PROTOCOL: 'sasl_ssl', FANOUT_KAFKA_SASL_MECHANISM: 'gssapi' }))
        .variable,
    ).toBe('FANOUT_KAFKA_SASL_MECHANISM');
    expect(configError(() => kafkaSecurityFromEnv({ FANOUT_KAFKA_SASL_MECHANISM: 'plain' })).message).toMatch(
      /FANOUT_KAFKA_SECURITY_PROTOCOL is plaintext/,
    );
    expect(
      configError(() =>
        kafkaSecurityFromEnv({
          FANOUT_KAFKA_SECURITY_PROTOCOL: 'sasl_plaintext',
          FANOUT_KAFKA_SASL_MECHANISM: 'plain',
          FANOUT_KAFKA_SASL_USERNAME: 'a',
          FANOUT_KAFKA_SASL_PASSWORD: 'b',
          FANOUT_KAFKA_TLS_CA_FILE: join(dir, 'cert.pem'),
        }),
      ).variable,
    ).toBe('FANOUT_KAFKA_TLS_CA_FILE');
  });

  it('loads a CA and a client certificate, checking that they parse', () => {
    const s = kafkaSecurityFromEnv({
      FANOUT_KAFKA_SECURITY_PROTOCOL: 'ssl',
      FANOUT_KAFKA_TLS_CA_FILE: join(dir, 'cert.pem'),
      FANOUT_KAFKA_TLS_CERT_FILE: join(dir, 'cert.pem'),
      FANOUT_KAFKA_TLS_KEY_FILE: join(dir, 'key.pem'),
      FANOUT_KAFKA_TLS_SERVERNAME: 'kafka.internal',
    });
    expect(s.tls?.ca).toHaveLength(1);
    expect(s.tls?.cert).toContain('BEGIN CERTIFICATE');
    expect(s.tls?.key).toContain('PRIVATE KEY');
    expect(s.tls?.servername).toBe('kafka.internal');
    expect(s.describe.clientCertificate).toBe(true);
    expect(
      configError(() =>
        kafkaSecurityFromEnv({ FANOUT_KAFKA_SECURITY_PROTOCOL: 'ssl', FANOUT_KAFKA_TLS_CA_FILE: file('junk.pem', 'not a certificate') }),
      ).variable,
    ).toBe('FANOUT_KAFKA_TLS_CA_FILE');
    const broken = file('broken.pem', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    expect(
      configError(() => kafkaSecurityFromEnv({ FANOUT_KAFKA_SECURITY_PROTOCOL: 'ssl', FANOUT_KAFKA_TLS_CA_FILE: broken })).message,
    ).toMatch(/does not parse/);
    expect(
      configError(() => kafkaSecurityFromEnv({ FANOUT_KAFKA_SECURITY_PROTOCOL: 'ssl', FANOUT_KAFKA_TLS_CERT_FILE: join(dir, 'cert.pem') }))
        .variable,
    ).toBe('FANOUT_KAFKA_TLS_KEY_FILE');
  });

  it('opens an encrypted key with its passphrase and names the passphrase when it is wrong', () => {
    const env = {
      FANOUT_KAFKA_SECURITY_PROTOCOL: 'ssl',
      FANOUT_KAFKA_TLS_CERT_FILE: join(dir, 'cert.pem'),
      FANOUT_KAFKA_TLS_KEY_FILE: join(dir, 'key-enc.pem'),
    };
    expect(kafkaSecurityFromEnv({ ...env, FANOUT_KAFKA_TLS_KEY_PASSWORD_FILE: file('kp', 's3cret\n') }).tls?.passphrase).toBe('s3cret');
    expect(configError(() => kafkaSecurityFromEnv({ ...env, FANOUT_KAFKA_TLS_KEY_PASSWORD: 'wrong' })).variable).toBe(
      'FANOUT_KAFKA_TLS_KEY_PASSWORD',
    );
  });

  it('takes OAUTHBEARER tokens from a file, read again at each authentication', async () => {
    const tokenFile = file('token', 'first\n');
    const s = kafkaSecurityFromEnv({
      FANOUT_KAFKA_SECURITY_PROTOCOL: 'sasl_ssl',
      FANOUT_KAFKA_SASL_MECHANISM: 'oauthbearer',
      FANOUT_KAFKA_OAUTH_TOKEN_FILE: tokenFile,
    });
    const provider = (s.sasl as { oauthBearerProvider: () => Promise<{ value: string }> }).oauthBearerProvider;
    expect(await provider()).toEqual({ value: 'first' });
    writeFileSync(tokenFile, 'second');
    expect(await provider()).toEqual({ value: 'second' });
  });

  it('takes OAUTHBEARER tokens from a provider module (the hook for a cloud signer)', async () => {
    const mod = file('provider.mjs', 'let n = 0; export default async () => ({ value: `token-${++n}` });\n');
    const s = kafkaSecurityFromEnv({
      FANOUT_KAFKA_SECURITY_PROTOCOL: 'sasl_ssl',
      FANOUT_KAFKA_SASL_MECHANISM: 'oauthbearer',
      FANOUT_KAFKA_OAUTH_TOKEN_PROVIDER: mod,
    });
    const provider = (s.sasl as { oauthBearerProvider: () => Promise<{ value: string }> }).oauthBearerProvider;
    expect(await provider()).toEqual({ value: 'token-1' });
    expect(await provider()).toEqual({ value: 'token-2' });
    const none = file('none.mjs', 'export const x = 1;\n');
    const bad = kafkaSecurityFromEnv({
      FANOUT_KAFKA_SECURITY_PROTOCOL: 'sasl_ssl',
      FANOUT_KAFKA_SASL_MECHANISM: 'oauthbearer',
      FANOUT_KAFKA_OAUTH_TOKEN_PROVIDER: none,
    });
    await expect((bad.sasl as { oauthBearerProvider: () => Promise<unknown> }).oauthBearerProvider()).rejects.toThrow(
      /no default export function/,
    );
    expect(
      configError(() => kafkaSecurityFromEnv({ FANOUT_KAFKA_SECURITY_PROTOCOL: 'sasl_ssl', FANOUT_KAFKA_SASL_MECHANISM: 'oauthbearer' }))
        .variable,
    ).toBe('FANOUT_KAFKA_OAUTH_TOKEN_PROVIDER');
    expect(
      configError(() =>
        kafkaSecurityFromEnv({
          FANOUT_KAFKA_SECURITY_PROTOCOL: 'sasl_ssl',
          FANOUT_KAFKA_SASL_MECHANISM: 'oauthbearer',
          FANOUT_KAFKA_OAUTH_TOKEN_PROVIDER: join(dir, 'missing.mjs'),
        }),
      ).message,
    ).toMatch(/does not exist/);
  });
});

describe('topicSettingsFromEnv', () => {
  it('defaults to three replicas, two in sync, seven days', () => {
    expect(topicSettingsFromEnv({})).toEqual({ replicationFactor: 3, minInsyncReplicas: 2, retentionMs: 604_800_000, strict: false });
  });

  it('refuses a min.insync.replicas above the replication factor, and a replication factor of 0', () => {
    expect(configError(() => topicSettingsFromEnv({ FANOUT_TOPIC_REPLICATION_FACTOR: '1' })).variable).toBe(
      'FANOUT_TOPIC_MIN_INSYNC_REPLICAS',
    );
    expect(configError(() => topicSettingsFromEnv({ FANOUT_TOPIC_REPLICATION_FACTOR: '0' })).variable).toBe(
      'FANOUT_TOPIC_REPLICATION_FACTOR',
    );
    expect(
      topicSettingsFromEnv({ FANOUT_TOPIC_REPLICATION_FACTOR: '1', FANOUT_TOPIC_MIN_INSYNC_REPLICAS: '1', FANOUT_TOPIC_STRICT: 'true' }),
    ).toMatchObject({ replicationFactor: 1, minInsyncReplicas: 1, strict: true });
  });
});
