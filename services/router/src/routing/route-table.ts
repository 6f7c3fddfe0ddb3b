/**
 * The route table: for each region, which gateway owns each partition of the users topic, read
 * from Kafka (the region's consumer group, see @fanout/kafka gateway-group.ts). A lookup hashes the
 * user id with Kafka's default partitioner, so it agrees with every producer that keys by user id,
 * and answers from memory.
 */
import type { Kafka } from 'kafkajs';
import { FanoutError } from '@fanout/protocol';
import { GroupView, partitionFor, withRetry, type GroupSnapshot } from '@fanout/kafka';
import type { Logger } from '@fanout/observability';

export interface Route {
  user: string;
  region: string;
  partition: number;
  node: string;
  url: string;
  ws_url: string;
  generation: string | null;
}

const USER_RE = /^[A-Za-z0-9._=@-]{1,200}$/;

export class RouteTable {
  readonly views = new Map<string, GroupView>();
  partitions = 0;
  private metaTimer: NodeJS.Timeout | null = null;
  rebalances = new Map<string, number>();

  constructor(
    private readonly o: {
      kafka: Kafka;
      regions: readonly string[];
      groupIdTemplate: string;
      topic: string;
      refreshMs: number;
      logger: Logger;
    },
  ) {
    for (const region of o.regions) {
      const view = new GroupView({
        kafka: o.kafka,
        groupId: o.groupIdTemplate.replace('{region}', region),
        topic: o.topic,
        refreshMs: o.refreshMs,
        logger: o.logger,
      });
      view.onChange((s, prev) => {
        if (s.generation !== prev.generation && s.generation !== null) {
          this.rebalances.set(region, (this.rebalances.get(region) ?? 0) + 1);
          o.logger.info(
            { region, generation: s.generation, state: s.state, gateways: s.members.map((m) => `${m.node}:${m.partitions.join('/')}`) },
            'region assignment changed',
          );
        }
      });
      this.views.set(region, view);
      this.rebalances.set(region, 0);
    }
  }

  async start(): Promise<void> {
    // The users topic may not exist yet (no publisher or gateway has run): lookups answer
    // no_owner until it does, and the count is refreshed every 10 s.
    await this.refreshPartitions().catch((err: unknown) =>
      this.o.logger.warn({ err, topic: this.o.topic }, 'users topic not readable yet'),
    );
    this.metaTimer = setInterval(() => void this.refreshPartitions().catch(() => {}), 10_000);
    this.metaTimer.unref();
    await Promise.all([...this.views.values()].map((v) => v.start()));
  }

  private async refreshPartitions(): Promise<void> {
    const admin = this.o.kafka.admin();
    await admin.connect();
    try {
      const meta = await withRetry(() => admin.fetchTopicMetadata({ topics: [this.o.topic] }), 3);
      this.partitions = meta.topics[0]?.partitions.length ?? 0;
    } finally {
      await admin.disconnect();
    }
  }

  snapshot(region: string): GroupSnapshot | undefined {
    return this.views.get(region)?.snapshot;
  }

  /** Throws FanoutError: invalid_parameter, unknown_region, no_owner. */
  lookup(user: string | null, region: string | null): Route {
    if (!user || !USER_RE.test(user))
      throw new FanoutError('invalid_parameter', '"user" must be a user id of 1 to 200 of [A-Za-z0-9._=@-].');
    if (!region) throw new FanoutError('invalid_parameter', `"region" is required; regions: ${this.o.regions.join(', ')}.`);
    const view = this.views.get(region);
    if (!view)
      throw new FanoutError(
        'unknown_region',
        `Unknown region ${JSON.stringify(region.slice(0, 40))}; regions: ${this.o.regions.join(', ')}.`,
      );
    if (this.partitions === 0) throw new FanoutError('no_owner', 'The users topic has no partitions yet; retry shortly.');
    const partition = partitionFor(user, this.partitions);
    // While the group rebalances, Kafka does not say who owns what: answer with the last stable
    // owner. Most partitions do not move (the assignor is sticky), and a client sent to one that
    // did is redirected by that gateway (wrong_gateway, or 503 not_ready if it is draining), which
    // costs it one more lookup instead of everyone waiting out the rebalance.
    const s = view.snapshot.state === 'Stable' ? view.snapshot : (view.stable ?? view.snapshot);
    const owner = s.owners.get(partition);
    if (!owner) {
      const why =
        s.members.length === 0 && s.state !== 'PreparingRebalance' && s.state !== 'CompletingRebalance'
          ? `region ${region} has no live gateway`
          : `partition ${partition} has no owner in region ${region} now (group ${s.state})`;
      throw new FanoutError('no_owner', `No gateway to route to: ${why}. Retry after a short backoff.`);
    }
    return {
      user,
      region,
      partition,
      node: owner.node,
      url: owner.url,
      ws_url: owner.url.replace(/^http/, 'ws') + '/v1/ws',
      generation: s.generation,
    };
  }

  async stop(): Promise<void> {
    if (this.metaTimer) clearInterval(this.metaTimer);
    await Promise.all([...this.views.values()].map((v) => v.stop()));
  }
}
