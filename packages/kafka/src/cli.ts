/**
 * `npm run kafka -- fetch`  resolves the Kafka jars into the cache and exits (CI warm-up).
 * `npm run kafka -- start [--port 9092] [--production-groups | --group-delay-ms N]`  runs a broker
 *   in the foreground until Ctrl-C; --production-groups uses Kafka's default group delay (3000 ms).
 */
import { getBroker } from './broker.js';
import { BrokerUnavailableError, ensureKafkaJars, GROUP_DELAY_KAFKA_DEFAULT_MS } from './local-kafka.js';

const log = (m: string) => console.error(`[kafka] ${m}`);
const [cmd = 'start', ...rest] = process.argv.slice(2);

async function main(): Promise<void> {
  if (cmd === 'fetch') {
    console.log(ensureKafkaJars(log));
    return;
  }
  if (cmd !== 'start') throw new Error(`unknown command ${cmd}; use fetch or start`);
  const i = rest.indexOf('--port');
  const port = i >= 0 ? Number(rest[i + 1]) : 9092;
  // --group-delay-ms N (or --production-groups for Kafka's default, 3000): how long a consumer
  // group's first join waits for more members.
  const g = rest.indexOf('--group-delay-ms');
  const groupDelay = rest.includes('--production-groups') ? GROUP_DELAY_KAFKA_DEFAULT_MS : g >= 0 ? Number(rest[g + 1]) : undefined;
  if (groupDelay !== undefined && !(Number.isInteger(groupDelay) && groupDelay >= 0)) throw new Error('--group-delay-ms needs a whole number of ms');
  const b = await getBroker({ port, log, ...(groupDelay !== undefined ? { groupInitialRebalanceDelayMs: groupDelay } : {}) });
  console.log(`KAFKA_BROKERS=${b.brokers.join(',')}  (${b.source}; Ctrl-C stops it)`);
  const stop = () => {
    void b.stop().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  setInterval(() => {}, 1 << 30);
}

main().catch((err) => {
  if (err instanceof BrokerUnavailableError) {
    console.error(`[kafka] ${err.message}`);
    process.exit(2);
  }
  console.error(err);
  process.exit(1);
});
