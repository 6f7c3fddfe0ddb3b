/**
 * Diagnosis only, for bench:connections (docs/benchmarks.md, "Connections per gateway"): preloaded
 * into the gateway, it removes kafkajs 2.2.4's idle timer loop from outside the project, to
 * measure what that loop costs. `RequestQueue.scheduleCheckPendingRequests` re-arms a timer with a
 * negative delay (1 ms) whenever nothing is pending (tulios/kafkajs#1556, #1704; the change here
 * is the one proposed in #1667): it returns instead when nothing is pending or throttled.
 *
 *   BENCH_GATEWAY_NODE_ARGS="--import tsx --import ./bench/connections-kafkajs-fix.ts" npm run bench:connections
 */
import { createRequire } from 'node:module';

interface RequestQueue {
  pending: unknown[];
  throttledUntil: number;
  scheduleCheckPendingRequests(): void;
}

const require = createRequire(import.meta.url);
const RQ = require('kafkajs/src/network/requestQueue/index.js') as { prototype: RequestQueue };
const original = RQ.prototype.scheduleCheckPendingRequests;
RQ.prototype.scheduleCheckPendingRequests = function (this: RequestQueue) {
  if (this.pending.length === 0 && this.throttledUntil <= Date.now()) return;
  original.call(this);
};
