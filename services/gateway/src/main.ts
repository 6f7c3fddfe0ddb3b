import { createLogger, runService } from '@fanout/observability';
import { startGateway } from './service.js';

// The gateway's own drain is bounded by FANOUT_SHUTDOWN_GRACE_MS; the outer limit is a little longer.
runService({
  name: 'gateway',
  logger: createLogger('gateway'),
  start: () => startGateway({}, undefined, process.argv.slice(2)),
  graceMs: Number(process.env.FANOUT_SHUTDOWN_GRACE_MS || 20_000) + 5_000,
});
