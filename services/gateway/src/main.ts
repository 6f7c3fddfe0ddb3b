import { createLogger, runService } from '@fanout/observability';
import { startGateway } from './service.js';

// The gateway's own drain is bounded by its validated FANOUT_SHUTDOWN_GRACE_MS; the outer limit is a little longer.
runService({
  name: 'gateway',
  logger: createLogger('gateway'),
  start: () => startGateway({}, undefined, process.argv.slice(2)),
  graceMs: (gateway) => gateway.config.shutdownGraceMs + 5_000,
});
