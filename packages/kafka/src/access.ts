/**
 * One test connection at start, before a service joins groups or creates topics. Refusals that no
 * retry can cure (a wrong password, a certificate the CA file does not vouch for, a broker name
 * the certificate does not carry, TLS spoken to a plaintext listener) stop the service at once
 * with a KafkaAccessError naming the variable to fix (exit 78, EX_CONFIG), rather than a loop of
 * retries and stack traces. An unreachable broker is waited for, up to a limit, as before.
 */
import { Kafka, logLevel } from 'kafkajs';
import { ConfigError, type Logger } from '@fanout/observability';
import { createKafka } from './client.js';
import { kafkajsSecurity, type KafkaSecurity } from './security.js';

/** A Kafka refusal that needs a configuration change; runService exits 78 on it. */
export class KafkaAccessError extends ConfigError {
  constructor(variable: string, message: string) {
    super(variable, message);
    this.name = 'KafkaAccessError';
  }
}

/** node:tls verification failures: the broker's certificate chain is not trusted. */
const UNTRUSTED = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
]);

interface KafkaJsError extends Error {
  code?: string;
  cause?: unknown;
  broker?: string;
}

function innermost(err: unknown): KafkaJsError {
  let e = err as KafkaJsError;
  // KafkaJSNumberOfRetriesExceeded and friends keep the original in `cause` (or originalError).
  for (let i = 0; i < 5; i++) {
    const next = (e.cause ?? (e as { originalError?: unknown }).originalError) as KafkaJsError | undefined;
    if (!next || typeof next !== 'object') break;
    e = next;
  }
  return e;
}

/** A refusal that retrying cannot cure, as the error to stop with; null for anything else. */
export function classifyAccessError(err: unknown, security: KafkaSecurity): KafkaAccessError | ConfigError | null {
  const e = innermost(err);
  if (e instanceof ConfigError) return e;
  const d = security.describe;
  const at = e.broker ? ` (broker ${e.broker})` : '';
  if (e.name === 'KafkaJSSASLAuthenticationError') {
    if (/mechanism|UNSUPPORTED_SASL_MECHANISM/i.test(e.message) && !/authentication failed/i.test(e.message)) {
      return new KafkaAccessError(
        'FANOUT_KAFKA_SASL_MECHANISM',
        `Kafka does not accept SASL ${d.mechanism?.toUpperCase()}${at}: ${e.message}. Use a mechanism the cluster enables.`,
      );
    }
    if (d.mechanism === 'oauthbearer') {
      return new KafkaAccessError(
        d.tokenFrom?.startsWith('file') ? 'FANOUT_KAFKA_OAUTH_TOKEN_FILE' : 'FANOUT_KAFKA_OAUTH_TOKEN_PROVIDER',
        `Kafka refused the OAUTHBEARER token from ${d.tokenFrom}${at}: ${e.message}`,
      );
    }
    return new KafkaAccessError(
      'FANOUT_KAFKA_SASL_PASSWORD',
      `Kafka refused SASL ${d.mechanism?.toUpperCase()} for user ${JSON.stringify(d.username)}${at}: check FANOUT_KAFKA_SASL_USERNAME and FANOUT_KAFKA_SASL_PASSWORD (or their _FILE forms). ${e.message}`,
    );
  }
  const code = e.code ?? '';
  if (UNTRUSTED.has(code)) {
    const trust = d.caFile ? `the CA in FANOUT_KAFKA_TLS_CA_FILE (${d.caFile})` : 'the public CAs (FANOUT_KAFKA_TLS_CA_FILE is not set)';
    return new KafkaAccessError(
      'FANOUT_KAFKA_TLS_CA_FILE',
      `the broker's certificate is not trusted by ${trust}${at}: ${code}. Point FANOUT_KAFKA_TLS_CA_FILE at the CA that signed the brokers' certificates.`,
    );
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return new KafkaAccessError(
      'FANOUT_KAFKA_TLS_SERVERNAME',
      `the broker's certificate does not name the address it was reached at${at}: ${e.message}. Use the broker names the certificate carries in FANOUT_BROKERS, or set FANOUT_KAFKA_TLS_SERVERNAME.`,
    );
  }
  if (
    /^ERR_SSL_(WRONG_VERSION_NUMBER|PACKET_LENGTH_TOO_LONG|RECORD_LAYER_FAILURE)$|^EPROTO$/.test(code) &&
    d.protocol !== 'plaintext' &&
    d.protocol !== 'sasl_plaintext'
  ) {
    return new KafkaAccessError(
      'FANOUT_KAFKA_SECURITY_PROTOCOL',
      `the broker did not answer in TLS${at} (${code}); it is probably a plaintext listener: use FANOUT_KAFKA_SECURITY_PROTOCOL=plaintext or sasl_plaintext, or the cluster's TLS port.`,
    );
  }
  if (/CERTIFICATE_REQUIRED|BAD_CERTIFICATE|UNKNOWN_CA/.test(code)) {
    return new KafkaAccessError(
      'FANOUT_KAFKA_TLS_CERT_FILE',
      `the broker refused this client's certificate${at} (${code}): it asks for mutual TLS; set FANOUT_KAFKA_TLS_CERT_FILE and FANOUT_KAFKA_TLS_KEY_FILE to a certificate its CA signed.`,
    );
  }
  return null;
}

/** The cluster did not answer in time (not necessarily a configuration mistake: exit 1). */
export class KafkaUnreachableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KafkaUnreachableError';
  }
}

export interface AccessCheckOptions {
  brokers: string[];
  security: KafkaSecurity;
  /** How long an unreachable cluster is waited for before giving up, in ms. */
  timeoutMs?: number;
  onWait?: (err: Error) => void;
}

/**
 * Connects once (retrying only what may cure itself) and reads the cluster's metadata. Resolves
 * with the number of brokers; rejects with a KafkaAccessError/ConfigError for refusals, or with
 * the last connection error once `timeoutMs` has passed.
 */
export async function checkKafkaAccess(opts: AccessCheckOptions): Promise<{ brokers: number }> {
  const kafka = new Kafka({
    clientId: 'fanout-access-check',
    brokers: opts.brokers,
    logLevel: logLevel.NOTHING,
    retry: { retries: 0 },
    connectionTimeout: 5000,
    ...kafkajsSecurity(opts.security),
  });
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  let closedByServer = 0;
  for (;;) {
    const admin = kafka.admin();
    try {
      await admin.connect();
      const cluster = await admin.describeCluster();
      return { brokers: cluster.brokers.length };
    } catch (err) {
      const refusal = classifyAccessError(err, opts.security);
      if (refusal) throw refusal;
      const e = innermost(err);
      if (/closed|ECONNRESET|timeout/i.test(`${e.message} ${e.code ?? ''}`)) closedByServer++;
      if (Date.now() > deadline) {
        // A plaintext client at a TLS or SASL listener sees only closed connections or timeouts.
        const hint =
          closedByServer > 0 && opts.security.protocol !== 'sasl_ssl'
            ? ` If the cluster requires TLS or SASL, set FANOUT_KAFKA_SECURITY_PROTOCOL (now ${opts.security.protocol}).`
            : '';
        throw new KafkaUnreachableError(
          `Kafka at ${opts.brokers.join(',')} did not answer within ${opts.timeoutMs ?? 60_000} ms: ${e.message}.${hint}`,
        );
      }
      opts.onWait?.(e);
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      await admin.disconnect().catch(() => {});
    }
  }
}

/**
 * What every service does first: check access (stopping at once on a refusal, see above), then
 * give the kafkajs client the service works with.
 */
export async function openKafka(opts: {
  brokers: string[];
  clientId: string;
  logger: Logger;
  security: KafkaSecurity;
  timeoutMs?: number;
}): Promise<Kafka> {
  let lastWarned = 0;
  const { brokers } = await checkKafkaAccess({
    brokers: opts.brokers,
    security: opts.security,
    ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
    onWait: (err) => {
      if (Date.now() - lastWarned < 10_000) return;
      lastWarned = Date.now();
      opts.logger.warn({ err: err.message, brokers: opts.brokers }, 'Kafka does not answer yet; retrying');
    },
  });
  opts.logger.info({ brokers, ...opts.security.describe }, 'Kafka reached');
  return createKafka(opts);
}
