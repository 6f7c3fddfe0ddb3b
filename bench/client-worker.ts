/**
 * A process of benchmark clients, started by bench/fanout.ts with `--clients worker` (all clients
 * here, the publisher alone in the bench process) or `--clients split` (half here, half there).
 * It answers each request from the parent in order and reports its received count every 10 ms.
 */
import { ClientPool, type FromWorker, type ToWorker } from './client-pool.js';

if (!process.send) {
  console.error('client-worker.ts is started by bench/fanout.ts (IPC)');
  process.exit(2);
}

const send = (m: FromWorker) => process.send!(m);
let pool: ClientPool | null = null;
let reported = -1;
const progress = setInterval(() => {
  if (pool && pool.received !== reported) {
    reported = pool.received;
    send({ op: 'progress', received: reported });
  }
}, 10);

// Requests are handled one at a time, in order.
let chain = Promise.resolve();
process.on('message', (m: ToWorker) => {
  chain = chain
    .then(() => handle(m))
    .catch((err: unknown) => {
      send({ op: 'error', message: err instanceof Error ? err.message : String(err) });
    });
});

async function handle(m: ToWorker): Promise<void> {
  switch (m.op) {
    case 'connect':
      pool = new ClientPool(m.n, m.channel, m.options);
      await pool.connect(m.url, m.parallel);
      send({ op: 'ok' });
      return;
    case 'measure':
      pool?.setMeasuring(m.on);
      send({ op: 'ok' });
      return;
    case 'mark':
      pool?.mark();
      send({ op: 'ok' });
      return;
    case 'stats':
      send({ op: 'stats', stats: pool ? pool.stats(m.expected) : { received: 0, short: 0, latency: [], closes: {} } });
      return;
    case 'close':
      await pool?.close();
      clearInterval(progress);
      send({ op: 'ok' });
      setTimeout(() => process.exit(0), 50);
      return;
  }
}

// The parent going away ends the worker.
process.on('disconnect', () => process.exit(0));
