export { startRouter, type RunningRouter } from './service.js';
export { routerConfig, ROUTER_DEFAULTS, type RouterConfig } from './config.js';
export { RouteTable, type Route } from './routing/route-table.js';
