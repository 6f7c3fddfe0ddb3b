export { startGateway, type RunningGateway } from './service.js';
export { gatewayConfig, GATEWAY_DEFAULTS, type GatewayConfig } from './config.js';
