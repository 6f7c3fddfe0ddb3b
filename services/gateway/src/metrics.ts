import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { closeLabel } from '@fanout/protocol';
import type { Hub } from './delivery/hub.js';
import type { MemoryBudget } from './delivery/memory-budget.js';
import type { ChannelWindows } from './delivery/channel-window.js';
import { ingestCounts, type IngestCounts } from './delivery/ingest.js';
import type { DeliveryCounters } from './delivery/connection.js';

/** Gateway metrics. Gauges are computed at scrape time from the hub (collect()). */
/** A counter that follows one of the hub's plain counters (the hot path never calls prom-client). */
function followCounter(registry: Registry, hub: Hub, field: keyof DeliveryCounters, name: string, help: string): Counter {
  let reported = 0;
  return new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      const d = hub.stats[field] - reported;
      if (d > 0) this.inc(d);
      reported = hub.stats[field];
    },
  });
}

function followIngest(registers: Registry[], ingest: IngestCounts): Counter {
  const reported = ingestCounts();
  return new Counter({
    name: 'fanout_gateway_kafka_messages_total',
    help: 'Kafka records read, by topic kind and whether any local client wanted them.',
    labelNames: ['stream', 'wanted'],
    registers,
    collect() {
      for (const stream of ['broadcast', 'users'] as const) {
        for (const [field, wanted] of [
          ['wanted', 'true'],
          ['unwanted', 'false'],
        ] as const) {
          const d = ingest[stream][field] - reported[stream][field];
          if (d > 0) this.inc({ stream, wanted }, d);
          reported[stream][field] = ingest[stream][field];
        }
      }
    },
  });
}

export function gatewayMetrics(
  registry: Registry,
  hub: Hub,
  budget: MemoryBudget,
  memory: { windows: Record<'broadcast' | 'users', ChannelWindows>; bound: () => number },
  pausedPartitions: () => number,
  lag: () => Map<string, number>,
  longPolls: () => number,
  kafkaReachable: () => boolean = () => true,
  ingest: IngestCounts = ingestCounts(),
) {
  const registers = [registry];
  let pausesReported = 0;
  return {
    connections: new Gauge({
      name: 'fanout_gateway_connections',
      help: 'Open client connections.',
      labelNames: ['transport'],
      registers,
      collect() {
        const counts = new Map<string, number>();
        for (const c of hub.connections) counts.set(c.meta.transport, (counts.get(c.meta.transport) ?? 0) + 1);
        this.reset();
        for (const [t, n] of counts) this.set({ transport: t }, n);
        if (counts.size === 0) this.set({ transport: 'websocket' }, 0);
      },
    }),
    subscriptions: new Gauge({
      name: 'fanout_gateway_subscriptions',
      help: 'Subscriptions held by open connections (exact and wildcard).',
      registers,
      collect() {
        this.set(hub.subscriptionCount);
      },
    }),
    channels: new Gauge({
      name: 'fanout_gateway_channels',
      help: 'Channels with at least one exact subscriber on this gateway.',
      registers,
      collect() {
        this.set(hub.channelCount);
      },
    }),
    queuedMessages: new Gauge({
      name: 'fanout_gateway_queued_messages',
      help: 'Messages owed to connections but not yet written to their sockets.',
      registers,
      collect() {
        let n = 0;
        for (const c of hub.connections) n += c.queuedMessages;
        this.set(n);
      },
    }),
    queuedBytes: new Gauge({
      name: 'fanout_gateway_queued_bytes',
      help: 'Bytes owed to connections but not yet written to their sockets.',
      registers,
      collect() {
        let n = 0;
        for (const c of hub.connections) n += c.queuedByteCount;
        this.set(n);
      },
    }),
    deliveries: followCounter(registry, hub, 'written', 'fanout_gateway_deliveries_total', 'Messages written to client sockets.'),
    conflated: followCounter(
      registry,
      hub,
      'conflated',
      'fanout_gateway_conflated_total',
      'Queued messages replaced by a newer one with the same key (policy conflate).',
    ),
    dropped: followCounter(
      registry,
      hub,
      'dropped',
      'fanout_gateway_dropped_total',
      'Queued messages dropped (policy drop, overflow of conflate, or memory shedding); clients got a gap frame.',
    ),
    slowConsumerCloses: followCounter(
      registry,
      hub,
      'slowConsumerCloses',
      'fanout_gateway_slow_consumer_disconnects_total',
      'Connections closed with 4001 because their queue could not make room.',
    ),
    creditStalls: followCounter(
      registry,
      hub,
      'creditStalls',
      'fanout_gateway_credit_stalls_total',
      'Flushes that stopped because the connection had no credits left.',
    ),
    socketStalls: followCounter(
      registry,
      hub,
      'socketStalls',
      'fanout_gateway_socket_stalls_total',
      'Flushes that stopped because the socket buffer was full (TCP backpressure).',
    ),
    budgetUsed: new Gauge({
      name: 'fanout_gateway_memory_budget_used_bytes',
      help: 'Bytes counted against the memory budget: queued across all connections plus the channel windows (at what their contents cost).',
      registers,
      collect() {
        this.set(budget.totalUsed);
      },
    }),
    budgetMax: new Gauge({
      name: 'fanout_gateway_memory_budget_bytes',
      help: 'The memory budget for queues and windows together (FANOUT_MEMORY_BUDGET_BYTES).',
      registers,
      collect() {
        this.set(budget.maxBytes);
      },
    }),
    windowBytes: windowGauge(
      registers,
      memory.windows,
      'fanout_gateway_window_bytes',
      'What the channel windows cost, in bytes of process memory (frames plus measured per-message and per-window overheads).',
      (w) => w.bytes,
    ),
    windowMessages: windowGauge(
      registers,
      memory.windows,
      'fanout_gateway_window_messages',
      'Messages held in the channel windows.',
      (w) => w.messageCount,
    ),
    windowChannels: windowGauge(
      registers,
      memory.windows,
      'fanout_gateway_window_channels',
      'Channels with a window.',
      (w) => w.channelCount,
    ),
    windowCap: windowGauge(
      registers,
      memory.windows,
      'fanout_gateway_window_cap_bytes',
      "The windows' cap now: FANOUT_WINDOW_TOTAL_BYTES, or less while the connection queues need the memory budget.",
      (w) => w.capBytes,
    ),
    memoryBound: new Gauge({
      name: 'fanout_gateway_memory_bound_bytes',
      help: 'What RSS stays under by the documented formula (docs/operations.md, Memory): start-up RSS + 2 x the budget + Kafka fetches + per connection its cost and socket buffer.',
      registers,
      collect() {
        this.set(memory.bound());
      },
    }),
    budgetPauses: new Counter({
      name: 'fanout_gateway_memory_budget_pauses_total',
      help: 'Times Kafka consumption was paused because the memory budget was reached.',
      registers,
      collect() {
        const d = budget.pauses - pausesReported;
        if (d > 0) this.inc(d);
        pausesReported = budget.pauses;
      },
    }),
    kafkaReachable: new Gauge({
      name: 'fanout_gateway_kafka_reachable',
      help: '1 while the latest reading of the end offsets got an answer from Kafka, 0 while Kafka does not answer (the gateway is then not ready for new clients).',
      registers,
      collect() {
        this.set(kafkaReachable() ? 1 : 0);
      },
    }),
    lag: new Gauge({
      name: 'fanout_gateway_kafka_lag_messages',
      help: 'Records in Kafka beyond the last one this gateway dispatched, over the partitions it reads, by stream (broadcast, users); read every few seconds.',
      labelNames: ['stream'],
      registers,
      collect() {
        for (const [stream, n] of lag()) this.set({ stream }, n);
      },
    }),
    pausedPartitions: new Gauge({
      name: 'fanout_gateway_kafka_paused_partitions',
      help: 'Kafka partitions whose consumption is paused by the memory budget.',
      registers,
      collect() {
        this.set(pausedPartitions());
      },
    }),
    consumed: followIngest(registers, ingest),
    skipped: new Counter({
      name: 'fanout_gateway_kafka_skipped_total',
      help: 'Kafka records without a usable channel (no fanout-channel header and no key); on the users topic also counted in fanout_gateway_misrouted_records_total (no_key).',
      registers,
    }),
    fanoutLatency: new Histogram({
      name: 'fanout_gateway_fanout_latency_seconds',
      help: 'Time from publish (fanout-ts) to the gateway queueing the message for its subscribers.',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    misrouted: (() => {
      const c = new Counter({
        name: 'fanout_gateway_misrouted_records_total',
        help: "Users-topic records read by this gateway that are not on the partition Kafka's murmur2 partitioner gives their key (a producer with another partitioner, or an explicit partition): forwarded to their key's partition (action forwarded, reason wrong_partition), or dropped because they cannot be routed (action dropped, reason no_key, invalid_key, channel_mismatch, invalid_copy, forward_refused).",
        labelNames: ['action', 'reason'],
        registers,
      });
      c.inc({ action: 'forwarded', reason: 'wrong_partition' }, 0);
      return c;
    })(),
    forwardedCopies: new Counter({
      name: 'fanout_gateway_forwarded_copies_total',
      help: 'Forwarded copies of misrouted user records read on their partition: delivered, dropped as a repeat of a copy already delivered (duplicate; a forward done twice), or left to the region whose gateway wrote it (other_region).',
      labelNames: ['outcome'],
      registers,
    }),
    consumerReplaced: new Counter({
      name: 'fanout_gateway_kafka_consumer_replaced_total',
      help: 'Broadcast consumers that crashed (a broker or coordinator lost in a failover) and were replaced by a new one continuing at the same offsets.',
      registers,
    }),
    rebalances: new Counter({
      name: 'fanout_gateway_user_rebalances_total',
      help: 'Assignments of user partitions received from the region consumer group.',
      registers,
    }),
    longPolls: new Gauge({
      name: 'fanout_gateway_long_polls',
      help: 'Long polls held open, waiting for a message or their timeout.',
      registers,
      collect() {
        this.set(longPolls());
      },
    }),
    resumes: new Counter({
      name: 'fanout_gateway_resumes_total',
      help: 'Subscriptions with a position, by where the missed messages came from (window, kafka) or reset.',
      labelNames: ['source'],
      registers,
    }),
    replayReads: new Counter({
      name: 'fanout_gateway_replay_reads_total',
      help: 'Reads of a partition range from Kafka (one read serves every resume of that partition waiting for it), including warm-ups of gained partitions.',
      labelNames: ['stream'],
      registers,
    }),
    admissionRefused: new Counter({
      name: 'fanout_gateway_admission_refused_total',
      help: 'New connections, streams and requests refused with Retry-After: 503 over the gateway-wide admission rate (overloaded) or while starting or draining (not_ready); 429 over the per-address rate (address_rate) or open-connection limit (address_connections).',
      labelNames: ['reason'],
      registers,
    }),
    opened: new Counter({
      name: 'fanout_gateway_connections_opened_total',
      help: 'Connections opened.',
      labelNames: ['transport'],
      registers,
    }),
    closed: new Counter({
      name: 'fanout_gateway_connections_closed_total',
      help: 'Connections closed, by close-code class.',
      labelNames: ['transport', 'reason'],
      registers,
    }),
    protocolErrors: new Counter({
      name: 'fanout_gateway_protocol_errors_total',
      help: 'Error frames sent to clients, by error code.',
      labelNames: ['code'],
      registers,
    }),
  };
}

export type GatewayMetrics = ReturnType<typeof gatewayMetrics>;

/** Maps a close code to a bounded label value: its label in the close-code registry (@fanout/protocol close-codes.ts), else `other`. */
export function closeReason(code: number): string {
  return closeLabel(code);
}

function windowGauge(
  registers: Registry[],
  windows: Record<'broadcast' | 'users', ChannelWindows>,
  name: string,
  help: string,
  value: (w: ChannelWindows) => number,
): Gauge {
  return new Gauge({
    name,
    help,
    labelNames: ['stream'],
    registers,
    collect() {
      for (const stream of ['broadcast', 'users'] as const) this.set({ stream }, value(windows[stream]));
    },
  });
}
