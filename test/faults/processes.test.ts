/**
 * Process faults under load, each while events flow to an SDK client, an SSE reader and a long
 * poller (all through a TCP proxy standing in for the load balancer) and a webhook endpoint:
 *
 * - the gateway they are connected to killed with SIGKILL in the middle of a burst (the load
 *   balancer then sends new connections to the other gateway): every acknowledged event once, in order;
 * - the dispatcher killed with SIGKILL while deliveries are in flight, and started again: every
 *   event delivered at least once, repeats only for deliveries whose outcome was unknown;
 * - a producer-library process killed with SIGKILL while batches are in flight: every event its
 *   caller was told was acknowledged is in Kafka and reaches the receivers.
 */
import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../../bench/processes.js';
import { countRecords, readAll } from '../kafka-read.js';
import { CHANNEL, expectPromisesKept, flowing, Load, openReceivers, outcome, printRow, settle, sleep, useFaultCluster } from './harness.js';

const fault = useFaultCluster();
const receivers = () => openReceivers(fault().proxy.url, fault().url('dispatcher'));

describe('fault: processes', () => {
  it('the gateway the clients are on, SIGKILLed mid-burst: every acknowledged event once, in order, from the other gateway', async () => {
    const r = await receivers();
    const load = new Load(fault().url('publisher'), 50, 'gw').start();
    try {
      await flowing(r.all);
      // A burst of 500 events in one batch request (the publisher's limit), and the gateway killed while it is delivered.
      const burst = load.burst(500);
      await sleep(150);
      const faultAt = Date.now();
      await fault().stopService('gateway-a', 'SIGKILL');
      fault().proxy.route(fault().port('gateway-b'));
      await burst;
      await sleep(8000);
      await load.stop();
      await settle(load, r.all, 60_000);
      const o = outcome('a gateway SIGKILLed mid-burst (clients move to the other)', load, r.all, faultAt);
      printRow(o);
      expect(load.publishes.filter((p) => p.id.includes('burst') && p.ackAt !== undefined)).toHaveLength(500);
      expectPromisesKept(o);
    } finally {
      await load.stop();
      await r.close();
      await fault().startService('gateway-a');
      fault().proxy.route(fault().port('gateway-a'));
    }
  });

  it('the dispatcher SIGKILLed with deliveries in flight, then started again: every event delivered at least once', async () => {
    const r = await receivers();
    // A slow endpoint (30 ms an answer) keeps deliveries in flight.
    r.hook!.receiver.answer = () => ({ status: 204, delayMs: 30 });
    await sleep(1000);
    const load = new Load(fault().url('publisher'), 50, 'disp').start();
    try {
      await flowing(r.all);
      await sleep(2000);
      const faultAt = Date.now();
      const inFlightAtKill = r.hook!.receiver.concurrent;
      await fault().stopService('dispatcher', 'SIGKILL');
      await sleep(2000);
      await fault().startService('dispatcher');
      await sleep(5000);
      await load.stop();
      await settle(load, r.all, 60_000);
      const o = outcome(`the dispatcher SIGKILLed with ${inFlightAtKill} deliveries in flight, restarted`, load, r.all, faultAt);
      printRow(o);
      expectPromisesKept(o);
      // Webhook repeats: only deliveries the dead dispatcher had not committed (at most its
      // commit interval's worth, 100 ms, plus those in flight).
      expect(o.duplicated.webhook).toBeLessThanOrEqual(50);
    } finally {
      await load.stop();
      await r.close();
    }
  });

  it('a producer-library process SIGKILLed with batches in flight: everything it was told was acknowledged is in Kafka and delivered', async () => {
    const r = await receivers();
    const env = {
      ...process.env,
      ...fault().kafka.clientEnv,
      FANOUT_BROKERS: fault().kafka.brokers.join(','),
      FANOUT_TOPIC_BROADCAST: `faults.${fault().run}.broadcast`,
      FANOUT_TOPIC_USERS: `faults.${fault().run}.users`,
      CHANNEL,
      FANOUT_LOG_LEVEL: 'fatal',
    };
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/faults/producer-worker.ts'], {
      cwd: ROOT,
      env,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const acked: { id: string; position: string }[] = [];
    let buf = '';
    let ready = false;
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line === 'ready') ready = true;
        const m = /^ack (\S+) (\S+)$/.exec(line);
        if (m) acked.push({ id: m[1]!, position: m[2]! });
      }
    });
    try {
      while (!ready || acked.length < 2000) await sleep(50);
      const faultAt = Date.now();
      child.kill('SIGKILL');
      await new Promise((res) => child.once('exit', res));
      const ackedIds = new Set(acked.map((a) => a.id));
      // In Kafka: every acknowledged event (read back from the topic, all partitions).
      const topic = `faults.${fault().run}.broadcast`;
      const records = await readAll(fault().kafka.brokers, topic, await countRecords(fault().kafka.brokers, topic), 30_000);
      const inKafka = new Set(records.map((rec) => rec.headers['fanout-id']));
      const missingInKafka = [...ackedIds].filter((id) => !inKafka.has(id));
      // At the receivers.
      const fake = new Load(fault().url('publisher'), 1, 'none');
      fake.publishes.push(
        ...acked.map((a, seq) => ({ seq, id: a.id, sentAt: faultAt - 1, status: 200, ackAt: faultAt - 1, position: a.position })),
      );
      await settle(fake, r.all, 60_000);
      const o = outcome(
        `a producer-library process SIGKILLed with batches in flight (${acked.length} acknowledged to its caller)`,
        fake,
        r.all,
        faultAt,
      );
      printRow(o);
      expect(missingInKafka).toEqual([]);
      expectPromisesKept(o);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await r.close();
    }
  });
});
