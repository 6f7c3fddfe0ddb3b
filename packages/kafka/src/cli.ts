/**
 * `npm run kafka -- fetch`  resolves the Kafka jars into the cache and exits (CI warm-up).
 * `npm run kafka -- start [--port 9092]`  runs a broker in the foreground until Ctrl-C.
 */
import { getBroker } from './broker.js';
import { BrokerUnavailableError, ensureKafkaJars } from './local-kafka.js';

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
  const b = await getBroker({ port, log });
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
