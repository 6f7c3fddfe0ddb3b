/**
 * Graceful drain (after soketi's sequence): fail readiness and refuse new connections, leave the
 * region's group and wait (bounded) until the other gateways own its user partitions, tell every
 * client to reconnect after a jittered delay (so a deploy does not become a reconnect storm), wait,
 * close what is left with 4000 "service restart", then stop Kafka and the listen socket. The whole
 * sequence is bounded by the grace period.
 */
import { CLOSE, reconnectFrame } from '@fanout/protocol';
import type { Logger, Health } from '@fanout/observability';
import type { Hub } from '../delivery/hub.js';

export interface DrainOptions {
  hub: Hub;
  health: Health;
  logger: Logger;
  jitterMs: number;
  delayMs: number;
  /**
   * Runs as soon as readiness fails: leaving the region's consumer group now lets the rebalance
   * (and the router) move this gateway's user partitions while its clients are reconnecting.
   */
  leaveGroups(): Promise<void>;
  /**
   * Resolves once the region's other gateways own the user partitions this one gave up (bounded
   * by the caller), so that clients told to reconnect find an owner when they ask the router,
   * instead of `no_owner` during the rebalance.
   */
  handedOver?(): Promise<void>;
  /** Stops Kafka consumers, closes the listen socket. */
  closeResources(): Promise<void>;
}

export async function drain(o: DrainOptions): Promise<void> {
  o.health.drain();
  const leaving = o.leaveGroups();
  if (o.handedOver) {
    await leaving;
    await o.handedOver();
  }
  const count = o.hub.connections.size;
  o.logger.info({ connections: count, jitter_ms: o.jitterMs, delay_ms: o.delayMs }, 'draining: sending reconnect frames');
  for (const c of o.hub.connections) {
    c.sendControl(reconnectFrame('shutdown', Math.floor(Math.random() * (o.jitterMs + 1))));
  }
  // Clients reconnect elsewhere in their own time; whoever is still here at the deadline is closed.
  const deadline = Date.now() + o.delayMs;
  while (o.hub.connections.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  for (const c of [...o.hub.connections]) c.closeWith(CLOSE.SERVICE_RESTART.code, CLOSE.SERVICE_RESTART.reason);
  await leaving;
  await o.closeResources();
  o.logger.info({ connections: count }, 'drained');
}
