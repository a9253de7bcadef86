export { buildGateway, type Gateway, type GatewayOptions, type GatewayParts } from './app.js';
export { ConfigError, type GatewayConfig, loadConfig } from './config/index.js';
