import { createLogger, runService } from '@fanout/observability';
import { startPublisher } from './service.js';

const logger = createLogger('publisher');
runService({ name: 'publisher', logger, start: () => startPublisher({}, logger) });
