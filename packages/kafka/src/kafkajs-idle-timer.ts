/**
 * A fix for kafkajs 2.2.4's idle timer loop, applied when `@fanout/kafka` is loaded.
 *
 * `RequestQueue.scheduleCheckPendingRequests` arms a timer even when nothing is pending or
 * throttled; its delay is then `throttledUntil - now`, negative, which Node runs as 1 ms, and the
 * check re-arms it: every broker connection of every idle client wakes the event loop about a
 * thousand times a second (tulios/kafkajs#1556, #1704; the fix below is the one proposed in #1667,
 * unmerged). Measured on the gateway: 897 wake-ups/s and 4.4% of a core with no client at all; 173
 * and 3.1% without the loop (bench:connections, docs/benchmarks.md). On Node 24 the negative delay
 * also prints a TimeoutNegativeWarning.
 *
 * The queue is checked anyway when a request is pushed or answered, so nothing else changes: the
 * timer is armed only while something waits or the broker throttles.
 * `packages/kafka/test/kafkajs-idle-timer.test.ts` fails if the loop comes back (or if kafkajs
 * moves the method, since the version is pinned exactly).
 */
import { createRequire } from 'node:module';

interface RequestQueue {
  pending: unknown[];
  throttledUntil: number;
  scheduleCheckPendingRequests(): void;
}

const require = createRequire(import.meta.url);
const RequestQueueClass = require('kafkajs/src/network/requestQueue/index.js') as { prototype: RequestQueue & { __fanoutIdleFix?: true } };
const proto = RequestQueueClass.prototype;
if (typeof proto.scheduleCheckPendingRequests !== 'function')
  throw new Error(
    'kafkajs RequestQueue.scheduleCheckPendingRequests not found: the idle-timer fix needs updating for this kafkajs version',
  );
if (!proto.__fanoutIdleFix) {
  const original = proto.scheduleCheckPendingRequests;
  proto.scheduleCheckPendingRequests = function (this: RequestQueue) {
    if (this.pending.length === 0 && !(this.throttledUntil > Date.now())) return;
    original.call(this);
  };
  proto.__fanoutIdleFix = true;
}
