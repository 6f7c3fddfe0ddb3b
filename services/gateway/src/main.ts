import { createLogger, runService } from '@fanout/observability';
import { startGateway } from './service.js';

// The gateway's own drain is bounded by FANOUT_SHUTDOWN_GRACE_MS; this is only the outer limit.
runService({ name: 'gateway', logger: createLogger('gateway'), start: () => startGateway({}, undefined, process.argv.slice(2)), graceMs: 60_000 });
