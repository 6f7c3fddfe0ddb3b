import { Kafka, logLevel, type LogEntry } from 'kafkajs';
import type { Logger } from '@fanout/observability';

/** Bridges kafkajs' logs into pino (DESIGN: kafkajs logs through `logCreator`). */
function pinoLogCreator(logger: Logger) {
  const kafkaLogger = logger.child({ module: 'kafkajs' });
  return () =>
    ({ level, log }: LogEntry) => {
      const { message, ...extra } = log;
      // Retries are bounded on purpose (a publish answers 503 rather than hang); kafkajs warns
      // about that on every producer start, which is noise, not news.
      if (message.startsWith('Limiting retries for the idempotent producer')) return kafkaLogger.debug(extra, message);
      if (level === logLevel.ERROR) kafkaLogger.error(extra, message);
      else if (level === logLevel.WARN) kafkaLogger.warn(extra, message);
      else if (level === logLevel.INFO) kafkaLogger.info(extra, message);
      else kafkaLogger.debug(extra, message);
    };
}

export function createKafka(opts: { brokers: string[]; clientId: string; logger: Logger }): Kafka {
  return new Kafka({
    clientId: opts.clientId,
    brokers: opts.brokers,
    // kafkajs' INFO is chatty (every group join); WARN and above reach the logs unless debugging.
    logLevel: opts.logger.isLevelEnabled('debug') ? logLevel.DEBUG : logLevel.WARN,
    logCreator: pinoLogCreator(opts.logger),
    retry: { initialRetryTime: 100, retries: 8 },
  });
}
