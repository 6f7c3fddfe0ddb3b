/**
 * Handing user partitions over before redirecting their clients: a gateway that drains (after
 * leaving the region's group) or that lost partitions in a rebalance waits until the group is
 * stable with another gateway owning each of them, so that clients told to reconnect find an owner
 * when they ask the router, instead of `no_owner` while the group rebalances. Bounded by
 * FANOUT_DRAIN_HANDOVER_MS: past it, the clients are redirected anyway.
 */
import type { GroupView } from '@fanout/kafka';
import type { Logger } from '@fanout/observability';

/**
 * Waits until the region's group is stable with every partition in `gaveUp` owned by another
 * gateway, at most `limitMs`; returns at once when there is nothing to hand over or nobody to
 * hand it to.
 */
export async function waitForHandover(group: GroupView, node: string, gaveUp: number[], limitMs: number, log: Logger): Promise<void> {
  if (gaveUp.length === 0 || limitMs <= 0) return;
  const started = Date.now();
  while (Date.now() - started < limitMs) {
    await group.refresh();
    const s = group.snapshot;
    // Nobody left to take them (members are only listed in full once the group is Stable again).
    if (s.state === 'Empty' || s.state === 'Dead') return;
    if (s.state === 'Stable') {
      if (!s.members.some((m) => m.node !== node)) return;
      const handedOver = gaveUp.every((p) => {
        const owner = s.owners.get(p)?.node;
        return owner !== undefined && owner !== node;
      });
      if (handedOver) {
        log.info({ partitions: gaveUp.length, handover_ms: Date.now() - started }, 'user partitions handed over');
        return;
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  log.warn({ limit_ms: limitMs }, 'user partitions not handed over within the limit; telling clients to reconnect anyway');
}
