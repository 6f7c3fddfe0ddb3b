export { ApiKeys } from './api-keys.js';
export { readRawBody, readJsonBody, requireJsonContentType, parseJson } from './body.js';
export { sendJson, sendError, asFanoutError, refusalHeaders } from './respond.js';
export { KeyedRateLimiter, rateLimited, retryAfterOf, clientAddress, requestAddress, type KeyedRateLimiterOptions } from './rate-limit.js';
