import { Kafka, logLevel, type LogEntry } from 'kafkajs';
import type { Logger } from '@fanout/observability';
import { kafkajsSecurity, type KafkaSecurity } from './security.js';

const RETRIABLE_NOISE =
  /rebalanc|does not host this topic-partition|coordinator is (loading|not available)|not the (leader|coordinator|correct coordinator)|member id is not valid|generation id|Topic creation errors/i;

/** Bridges kafkajs' logs into pino (DESIGN: kafkajs logs through `logCreator`). */
function pinoLogCreator(logger: Logger) {
  const kafkaLogger = logger.child({ module: 'kafkajs' });
  return () =>
    ({ level, log }: LogEntry) => {
      const { message, ...extra } = log;
      // Retries are bounded on purpose (a publish answers 503 rather than hang); kafkajs warns
      // about that on every producer start, which is noise, not news.
      if (message.startsWith('Limiting retries for the idempotent producer')) return kafkaLogger.debug(extra, message);
      // kafkajs logs every retriable protocol answer (a rebalance in progress, a coordinator or
      // leader moving) at error level before it retries; they are routine in a consumer group.
      if (
        level === logLevel.ERROR &&
        message.startsWith('Response ') &&
        typeof extra.error === 'string' &&
        RETRIABLE_NOISE.test(extra.error)
      ) {
        return kafkaLogger.debug(extra, message);
      }
      if (level === logLevel.ERROR) kafkaLogger.error(extra, message);
      else if (level === logLevel.WARN) kafkaLogger.warn(extra, message);
      else if (level === logLevel.INFO) kafkaLogger.info(extra, message);
      else kafkaLogger.debug(extra, message);
    };
}

/**
 * A kafkajs client with the project's logging and retries, and the FANOUT_KAFKA_* security
 * settings (read from the environment when `security` is not given; see security.ts).
 */
export function createKafka(opts: { brokers: string[]; clientId: string; logger: Logger; security?: KafkaSecurity }): Kafka {
  return new Kafka({
    ...kafkajsSecurity(opts.security),
    clientId: opts.clientId,
    brokers: opts.brokers,
    // kafkajs' INFO is chatty (every group join); WARN and above reach the logs unless debugging.
    logLevel: opts.logger.isLevelEnabled('debug') ? logLevel.DEBUG : logLevel.WARN,
    logCreator: pinoLogCreator(opts.logger),
    // Waits capped at 1 s: a consumer whose leader or coordinator died in a failover retries, and
    // kafkajs restarts it, within a second of Kafka having moved them, not after doubling waits.
    retry: { initialRetryTime: 100, maxRetryTime: 1000, retries: 8 },
  });
}

/**
 * How a producer retries a write Kafka cannot take yet (a leader failover, a broker restarting):
 * every half second, for about 30 s, rather than kafkajs' doubling waits, which left writes idle
 * for 10 s after the new leader was already there (measured with bench:failover). Kafka's own
 * failover (fencing a dead broker after broker.session.timeout.ms, 9 s by default) fits well
 * inside the budget; past it the write fails and the publish is refused, never acknowledged.
 */
export const PRODUCER_RETRY = { initialRetryTime: 100, maxRetryTime: 500, retries: 60 } as const;

/**
 * Runs a kafkajs consumer's pause, resume or paused call, which throw while the consumer is
 * between a crash and kafkajs' restart of it ("Consumer group was not initialized"): a thrown
 * call there took a whole gateway down during a broker outage. The state is applied again on the
 * next join, so the call is dropped and `fallback` returned.
 */
export function whileRunning<T>(call: () => T, fallback: T): T {
  try {
    return call();
  } catch (err) {
    if (err instanceof Error && /not initialized|must be called first/i.test(err.message)) return fallback;
    throw err;
  }
}

/**
 * Retries an admin call through the short windows where Kafka answers "not the leader" or "the
 * coordinator is loading" (right after a topic is created, or while a broker starts).
 */
export async function withRetry<T>(fn: () => Promise<T>, attempts = 20, delayMs = 250): Promise<T> {
  let lastErr: unknown;
  for (let i = 0; i < attempts; i++) {
    try {
      return await fn();
    } catch (err) {
      lastErr = err;
      const retriable = (err as { retriable?: boolean }).retriable !== false;
      if (!retriable) throw err;
      await new Promise((r) => setTimeout(r, delayMs));
    }
  }
  throw lastErr;
}
