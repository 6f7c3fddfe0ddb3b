import { createLogger, runService } from '@fanout/observability';
import { startDispatcher } from './service.js';

// The dispatcher's own drain is bounded by FANOUT_SHUTDOWN_GRACE_MS; this is only the outer limit.
const logger = createLogger('dispatcher');
runService({
  name: 'dispatcher',
  logger,
  start: () => startDispatcher({}, logger),
  graceMs: Number(process.env.FANOUT_SHUTDOWN_GRACE_MS || 20_000) + 5_000,
});
