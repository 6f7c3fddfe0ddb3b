/**
 * Gives the whole test run two real Kafka brokers and stops them when the run ends:
 *
 * - `kafkaBrokers`: KAFKA_BROKERS, testcontainers, or a local KRaft from Maven jars (see
 *   packages/kafka/src/broker.ts), with quick group formation (group.initial.rebalance.delay.ms=0
 *   when started here);
 * - `kafkaBrokersProductionGroups`: a broker with Kafka's default group settings
 *   (group.initial.rebalance.delay.ms=3000), for the resume and rebalance tests, which must hold
 *   where every new consumer group waits 3 s; KAFKA_BROKERS_PRODUCTION_GROUPS names one, else a
 *   second local broker is started.
 */
import type { TestProject } from 'vitest/node';
import { getBroker, GROUP_DELAY_KAFKA_DEFAULT_MS, startLocalKafka, waitForBroker, type BrokerHandle } from '@fanout/kafka';

const handles: { stop(): Promise<void> }[] = [];

async function productionGroupsBroker(): Promise<string[]> {
  const fromEnv = process.env.KAFKA_BROKERS_PRODUCTION_GROUPS?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (fromEnv && fromEnv.length > 0) {
    await waitForBroker(fromEnv);
    return fromEnv;
  }
  const local = await startLocalKafka({ port: 0, groupInitialRebalanceDelayMs: GROUP_DELAY_KAFKA_DEFAULT_MS, heap: '384m' });
  handles.push(local);
  await waitForBroker(local.brokers);
  return local.brokers;
}

export async function setup(project: TestProject): Promise<void> {
  const started = Date.now();
  const [main, production] = await Promise.all([
    getBroker({ log: (m) => console.log(`[kafka] ${m}`) }).then((h: BrokerHandle) => {
      handles.push(h);
      return h;
    }),
    productionGroupsBroker(),
  ]);
  console.log(
    `[kafka] ${main.source} broker ${main.brokers.join(',')} and a broker with Kafka's default group delay at ${production.join(',')} ready in ${Date.now() - started} ms`,
  );
  project.provide('kafkaBrokers', main.brokers);
  project.provide('kafkaBrokersProductionGroups', production);
}

export async function teardown(): Promise<void> {
  await Promise.all(handles.map((h) => h.stop()));
}

declare module 'vitest' {
  export interface ProvidedContext {
    kafkaBrokers: string[];
    kafkaBrokersProductionGroups: string[];
  }
}
