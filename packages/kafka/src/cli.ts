/**
 * `npm run kafka -- fetch`  resolves the Kafka jars into the cache and exits (CI warm-up).
 * `npm run kafka -- start [--port 9092] [--brokers 1|3] [--security plaintext|sasl_ssl]
 *                         [--production-groups | --group-delay-ms N]`
 *   runs Kafka in the foreground until Ctrl-C, which stops it and removes its work dir.
 *   --brokers 3 starts a three-node KRaft cluster (replication factor 3, min.insync.replicas 2;
 *   --port is the first node's); --security sasl_ssl makes the client listener SASL_SSL with a CA,
 *   certificates and a user `fanout` made for the run (SCRAM-SHA-512 for clients by default).
 *   --production-groups uses Kafka's default group delay (3000 ms).
 *   Prints `export NAME=value` lines for everything a client needs and writes the same lines to
 *   <workdir>/client.env, so another shell can `source <workdir>/client.env` (or paste them).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { getBroker } from './broker.js';
import {
  BrokerUnavailableError,
  clientEnvExports,
  ensureKafkaJars,
  GROUP_DELAY_KAFKA_DEFAULT_MS,
  type LocalKafkaSecurity,
} from './local-kafka.js';

const log = (m: string) => console.error(`[kafka] ${m}`);
const [cmd = 'start', ...rest] = process.argv.slice(2);

/** A wrong command line: the message says what is accepted, and the exit code is 64 (usage). */
class UsageError extends Error {}

function flag(name: string): string | undefined {
  const i = rest.indexOf(name);
  if (i < 0) return undefined;
  const v = rest[i + 1];
  if (v === undefined || v.startsWith('--')) throw new UsageError(`${name} needs a value`);
  return v;
}

function parseStart() {
  const rawPort = flag('--port');
  const port = rawPort === undefined ? 9092 : Number(rawPort);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new UsageError(`--port needs a port number (0 for any free one), got ${rawPort}`);
  const rawBrokers = flag('--brokers') ?? '1';
  if (rawBrokers !== '1' && rawBrokers !== '3') throw new UsageError(`--brokers must be 1 or 3, got ${rawBrokers}`);
  const security = (flag('--security') ?? 'plaintext') as LocalKafkaSecurity;
  if (security !== 'plaintext' && security !== 'sasl_ssl')
    throw new UsageError(`--security must be plaintext or sasl_ssl, got ${String(security)}`);
  // --group-delay-ms N (or --production-groups for Kafka's default, 3000): how long a consumer
  // group's first join waits for more members.
  const g = flag('--group-delay-ms');
  const groupDelay = rest.includes('--production-groups') ? GROUP_DELAY_KAFKA_DEFAULT_MS : g !== undefined ? Number(g) : undefined;
  if (groupDelay !== undefined && !(Number.isInteger(groupDelay) && groupDelay >= 0))
    throw new UsageError('--group-delay-ms needs a whole number of ms');
  return {
    port,
    brokers: Number(rawBrokers) as 1 | 3,
    security,
    ...(groupDelay !== undefined ? { groupInitialRebalanceDelayMs: groupDelay } : {}),
  };
}

async function main(): Promise<void> {
  if (cmd === 'fetch') {
    console.log(ensureKafkaJars(log));
    return;
  }
  if (cmd !== 'start') throw new UsageError(`unknown command ${cmd}; use fetch or start`);
  const b = await getBroker({ ...parseStart(), log });
  const exports = clientEnvExports(b.env);
  console.log(exports);
  if (b.workDir) {
    writeFileSync(join(b.workDir, 'client.env'), `${exports}\n`);
    console.log(`# work dir ${b.workDir} (certificates, password, client.env); ${b.source} Kafka, Ctrl-C stops it and removes the dir`);
  } else {
    console.log(b.source === 'env' ? '# Kafka from KAFKA_BROKERS; nothing started here' : `# ${b.source} Kafka; Ctrl-C stops it`);
  }
  const stop = () => {
    void b.stop().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  setInterval(() => {}, 1 << 30);
}

main().catch((err) => {
  if (err instanceof UsageError) {
    console.error(`[kafka] ${err.message}`);
    process.exit(64);
  }
  if (err instanceof BrokerUnavailableError) {
    console.error(`[kafka] ${err.message}`);
    process.exit(2);
  }
  console.error(err);
  process.exit(1);
});
