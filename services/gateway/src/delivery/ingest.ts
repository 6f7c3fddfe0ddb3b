/**
 * Where Kafka records become deliveries: the entry of the gateway's hot path, and what happens to
 * the clients of user partitions this gateway loses in a rebalance. `service.ts` wires these to the
 * broadcast and user consumers (kafka/); the rest of the path is the hub (fan-out to subscribed
 * connections), each connection's queue and credits, and the channel windows.
 */
import { CLOSE, isUserChannel, reconnectFrame } from '@fanout/protocol';
import type { IncomingEvent } from '@fanout/kafka';
import type { Hub } from './hub.js';
import type { Outgoing, OutgoingFactory } from './outgoing.js';
import type { Streams } from './streams.js';

/** Records read per stream, wanted by a local client or not (followed by the metrics at scrape time). */
export type IngestCounts = Record<'broadcast' | 'users', { wanted: number; unwanted: number }>;

export function ingestCounts(): IngestCounts {
  return { broadcast: { wanted: 0, unwanted: 0 }, users: { wanted: 0, unwanted: 0 } };
}

export interface IngestDeps {
  streams: Streams;
  factory: OutgoingFactory;
  hub: Hub;
  /** Long polls waiting on a channel (transports/long-poll.ts). */
  pollers: { notify(o: Outgoing): void; waiting(channel: string): boolean };
  counts: IngestCounts;
  /** Publish-to-dispatch latency of a wanted record, in seconds. */
  observeLatency(seconds: number): void;
}

/**
 * The hot path for one stream: every record goes to its channel's window (resume, polling,
 * history), as the bytes it came in; a record some local connection or long poll wants is also
 * encoded, once per gateway, and the same bytes go to every subscriber. Records of a partition's
 * recent past (the warm-up) only load the window.
 */
export function recordHandler(
  kind: 'broadcast' | 'users',
  deps: IngestDeps,
): (e: IncomingEvent, partition: number, offset: number) => void {
  const { windows, warmup } = deps.streams[kind];
  const { factory, hub, pollers } = deps;
  const counts = deps.counts[kind];
  return (e, partition, offset) => {
    windows.noteOffset(partition, offset);
    const now = Date.now();
    if (warmup.isHistory(partition, offset)) {
      // The recent past, loading the window at start: aged by its publish time, sent to nobody.
      windows.append(e, partition, offset, Math.min(now, e.publishedAt));
      warmup.handled(partition, offset);
      return;
    }
    const wanted = hub.wants(e.channel);
    if (!wanted && !pollers.waiting(e.channel)) {
      // Nobody here wants it now (most of the broadcast topic, on most gateways): only the window
      // keeps it, as the bytes it came in; it is not decoded and no message is built.
      windows.append(e, partition, offset, now);
      counts.unwanted++;
      return;
    }
    const o = factory.make(e, partition, offset, now);
    windows.append(e, partition, offset, now);
    pollers.notify(o);
    if (!wanted) {
      counts.unwanted++;
      return;
    }
    counts.wanted++;
    hub.dispatch(o);
    deps.observeLatency(Math.max(0, now - e.publishedAt) / 1000);
  };
}

/**
 * User partitions this gateway lost in a rebalance: their windows and warm-ups go at once; their
 * clients are told to reconnect (reason `rebalance`, jittered) and closed with 4002 once the new
 * owner holds the partition (`handedOver`, bounded), so that the router has an owner to name.
 */
export function onUserPartitionsLost(
  lost: number[],
  deps: { streams: Streams; hub: Hub; jitterMs: number; handedOver: (lost: number[]) => Promise<void> },
): void {
  const { streams, hub } = deps;
  for (const p of lost) {
    streams.users.windows.dropPartition(p);
    streams.users.warmup.finish(p);
  }
  if (lost.length === 0) return;
  const moved = new Set(lost);
  const redirect = () => {
    for (const c of [...hub.connections]) {
      const affected = [...c.channels].some(
        (ch) => isUserChannel(ch) && moved.has(streams.partitionOf(ch)) && !streams.users.owns(streams.partitionOf(ch)),
      );
      if (!affected) continue;
      c.sendControl(reconnectFrame('rebalance', Math.floor(Math.random() * (deps.jitterMs + 1))));
      c.closeWith(CLOSE.REBALANCE.code, CLOSE.REBALANCE.reason);
    }
  };
  void deps.handedOver(lost).then(redirect, redirect);
}
