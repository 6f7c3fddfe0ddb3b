/**
 * Gives the whole test run one real Kafka broker (KAFKA_BROKERS, testcontainers, or a local KRaft
 * from Maven jars; see packages/kafka/src/broker.ts) and stops it when the run ends.
 */
import type { TestProject } from 'vitest/node';
import { getBroker, type BrokerHandle } from '@fanout/kafka';

let handle: BrokerHandle | undefined;

export async function setup(project: TestProject): Promise<void> {
  const started = Date.now();
  handle = await getBroker({ log: (m) => console.log(`[kafka] ${m}`) });
  console.log(`[kafka] ${handle.source} broker ${handle.brokers.join(',')} ready in ${Date.now() - started} ms`);
  project.provide('kafkaBrokers', handle.brokers);
}

export async function teardown(): Promise<void> {
  await handle?.stop();
}

declare module 'vitest' {
  export interface ProvidedContext {
    kafkaBrokers: string[];
  }
}
