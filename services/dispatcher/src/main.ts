import { createLogger, runService } from '@fanout/observability';
import { startDispatcher } from './service.js';

// The dispatcher's own drain is bounded by its validated FANOUT_SHUTDOWN_GRACE_MS; this is only the outer limit.
const logger = createLogger('dispatcher');
runService({
  name: 'dispatcher',
  logger,
  start: () => startDispatcher({}, logger),
  graceMs: (dispatcher) => dispatcher.config.shutdownGraceMs + 5_000,
});
