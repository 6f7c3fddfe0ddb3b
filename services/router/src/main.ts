import { createLogger, runService } from '@fanout/observability';
import { startRouter } from './service.js';

const logger = createLogger('router');
runService({ name: 'router', logger, start: () => startRouter({}, logger) });
