/**
 * Certificates and credentials for a local SASL_SSL Kafka cluster (local-kafka.ts), made fresh in
 * the cluster's work dir with `openssl` on every start and removed with it on stop. Nothing here
 * is meant to protect anything: it exists so that clients can be tested against a broker that
 * speaks TLS and SASL the way a production one does.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface LocalClusterTls {
  /** The folder holding every file below (the cluster's work dir). */
  dir: string;
  /** The CA that signed the brokers' and the client's certificates; clients trust it. */
  caFile: string;
  /** A client certificate signed by that CA, for mutual TLS (the brokers verify it when presented). */
  clientCertFile: string;
  /** The client certificate's private key (PKCS#8 PEM, unencrypted). */
  clientKeyFile: string;
  /** A second, unrelated CA, for tests that a client trusting only it is refused. */
  untrustedCaFile: string;
}

export interface LocalClusterSasl {
  username: string;
  password: string;
  /** The password alone, without a newline (FANOUT_KAFKA_SASL_PASSWORD_FILE). */
  passwordFile: string;
}

/** The TLS files plus the brokers' own keystore (private key followed by its certificate chain). */
export interface LocalClusterTlsFiles extends LocalClusterTls {
  serverKeystoreFile: string;
}

/** Certificates live as long as a work dir does; a month is plenty and keeps clocks out of it. */
const DAYS = '30';
/** P-256 keys: made in milliseconds where RSA 2048 takes a few hundred each, and Java, Kafka and Node all take them. */
const NEW_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'];

function openssl(dir: string, args: string[]): void {
  const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
  if (r.error) throw new Error(`openssl could not run (${r.error.message}); install it (Debian: apt-get install openssl)`);
  if (r.status !== 0) throw new Error(`openssl ${args[0]} failed (exit ${r.status}): ${r.stderr.slice(-1000)}`);
}

/** A self-signed CA. The extensions are explicit so that no distribution's openssl.cnf decides them. */
function makeCa(dir: string, name: string, cn: string): void {
  openssl(dir, [
    'req',
    '-x509',
    ...NEW_KEY,
    '-nodes',
    '-days',
    DAYS,
    '-subj',
    `/CN=${cn}`,
    '-keyout',
    `${name}-key.pem`,
    '-out',
    `${name}.pem`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
}

/** A leaf certificate signed by the CA `ca`; openssl 3 writes the new key as unencrypted PKCS#8. */
function makeLeaf(dir: string, ca: string, name: string, cn: string, extensions: string[]): void {
  openssl(dir, ['req', '-new', ...NEW_KEY, '-nodes', '-subj', `/CN=${cn}`, '-keyout', `${name}-key.pem`, '-out', `${name}.csr`]);
  writeFileSync(join(dir, `${name}.ext`), ['basicConstraints=CA:FALSE', ...extensions, ''].join('\n'));
  openssl(dir, [
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.pem`,
    '-CAkey',
    `${ca}-key.pem`,
    '-set_serial',
    `0x${randomBytes(8).toString('hex')}`,
    '-days',
    DAYS,
    '-extfile',
    `${name}.ext`,
    '-out',
    `${name}.pem`,
  ]);
  rmSync(join(dir, `${name}.csr`));
  rmSync(join(dir, `${name}.ext`));
}

/**
 * Writes ca.pem, server.pem (SAN localhost and 127.0.0.1, which is what the brokers advertise and
 * what Node checks), client.pem/client-key.pem and untrusted-ca.pem into `dir`. Throws a plain
 * Error naming the openssl step that failed.
 */
export function generateLocalTls(dir: string): LocalClusterTlsFiles {
  makeCa(dir, 'ca', 'fanout local Kafka CA');
  makeLeaf(dir, 'ca', 'server', 'localhost', [
    'subjectAltName=DNS:localhost,IP:127.0.0.1',
    'keyUsage=critical,digitalSignature',
    'extendedKeyUsage=serverAuth',
  ]);
  makeLeaf(dir, 'ca', 'client', 'fanout', ['keyUsage=critical,digitalSignature', 'extendedKeyUsage=clientAuth']);
  makeCa(dir, 'untrusted-ca', 'fanout untrusted CA');
  // Nobody may sign with the untrusted CA; only its certificate is needed.
  rmSync(join(dir, 'untrusted-ca-key.pem'));
  // KIP-651 PEM keystore: the private key first, then the certificate chain.
  const serverKeystoreFile = join(dir, 'server-keystore.pem');
  writeFileSync(
    serverKeystoreFile,
    [
      readFileSync(join(dir, 'server-key.pem'), 'utf8'),
      readFileSync(join(dir, 'server.pem'), 'utf8'),
      readFileSync(join(dir, 'ca.pem'), 'utf8'),
    ].join(''),
    { mode: 0o600 },
  );
  return {
    dir,
    caFile: join(dir, 'ca.pem'),
    clientCertFile: join(dir, 'client.pem'),
    clientKeyFile: join(dir, 'client-key.pem'),
    untrustedCaFile: join(dir, 'untrusted-ca.pem'),
    serverKeystoreFile,
  };
}

/**
 * The one user of a local cluster, `fanout`, with a random password. Hex keeps the password out
 * of every quoting question: JAAS strings, the storage tool's `[name=...,password=...]` and shells.
 */
export function generateLocalSasl(dir: string): LocalClusterSasl {
  const password = randomBytes(18).toString('hex');
  const passwordFile = join(dir, 'fanout.password');
  writeFileSync(passwordFile, password, { mode: 0o600 });
  return { username: 'fanout', password, passwordFile };
}

/** Storage-tool arguments that create the user's SCRAM credentials in the formatted metadata log. */
export function scramFormatArgs(sasl: LocalClusterSasl): string[] {
  return ['SCRAM-SHA-256', 'SCRAM-SHA-512'].flatMap((m) => ['--add-scram', `${m}=[name=${sasl.username},password=${sasl.password}]`]);
}

export const SASL_MECHANISMS = ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512', 'OAUTHBEARER'] as const;

/**
 * Broker properties for the client-facing SASL_SSL listener `listener` (a listener name, e.g.
 * SASL_SSL). Everything is prefixed with the listener, so the PLAINTEXT inter-broker and
 * controller listeners are untouched.
 */
export function saslSslListenerProperties(listener: string, tls: LocalClusterTlsFiles, sasl: LocalClusterSasl): string[] {
  const p = `listener.name.${listener.toLowerCase()}`;
  return [
    // PEM stores (KIP-651). The key is unencrypted and ssl.key.password unset, which 3.9.1 accepts.
    `${p}.ssl.keystore.type=PEM`,
    `${p}.ssl.keystore.location=${tls.serverKeystoreFile}`,
    `${p}.ssl.truststore.type=PEM`,
    `${p}.ssl.truststore.location=${tls.caFile}`,
    // "requested": a client certificate is optional, but verified against ca.pem when presented.
    `${p}.ssl.client.auth=requested`,
    `${p}.sasl.enabled.mechanisms=${SASL_MECHANISMS.join(',')}`,
    `${p}.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_${sasl.username}="${sasl.password}";`,
    // SCRAM credentials live in the cluster metadata (created at format time); the broker still
    // needs a JAAS entry per mechanism.
    `${p}.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;`,
    `${p}.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;`,
    // UNSECURED, local use only: with no server callback handler configured, Kafka validates
    // OAUTHBEARER tokens with its built-in OAuthBearerUnsecuredValidatorCallbackHandler, which
    // accepts any unsigned JWT (alg "none") with a `sub` and an unexpired `exp`. Anyone can mint
    // such a token; it exists so that the client's OAUTHBEARER path can be exercised locally.
    `${p}.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;`,
  ];
}
