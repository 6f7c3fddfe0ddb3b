/**
 * Resume: a client subscribes with the last position it saw on a channel and gets everything after
 * it, exactly once and in order: from the in-memory window when it covers the position, else from
 * Kafka (a bounded read of the channel's partition), else an explicit `reset`. Never a silent gap.
 */
import { type Position, resetFrame, type ResetReason } from '@fanout/protocol';
import type { Logger } from '@fanout/observability';
import type { Connection } from './connection.js';
import type { OutgoingFactory } from './outgoing.js';
import type { Hub } from './hub.js';
import type { Streams } from './streams.js';
import { ReplayUnavailableError } from '../kafka/replay-reader.js';

export interface ResumerOptions {
  hub: Hub;
  streams: Streams;
  factory: OutgoingFactory;
  epoch: string;
  /** Most offsets of a partition a resume may read from Kafka; further back is a reset. */
  replayMaxOffsets: number;
  logger: Logger;
  onResume?(source: 'window' | 'kafka' | 'reset'): void;
}

export class Resumer {
  constructor(private readonly o: ResumerOptions) {}

  /** Call right after subscribing `conn` to `channel` (in the same turn). */
  resume(conn: Connection, channel: string, pos: Position): void {
    if (pos.epoch !== this.o.epoch) return this.reset(conn, channel, 'epoch_changed');
    const stream = this.o.streams.for(channel);
    const partition = this.o.streams.partitionOf(channel);
    if (pos.partition !== partition) return this.reset(conn, channel, 'partition_changed');
    const cover = stream.windows.since(channel, partition, pos.offset);
    if (cover.kind === 'window') {
      for (const m of cover.messages) conn.enqueue(m);
      this.o.hub.wake(conn);
      this.o.onResume?.('window');
      return;
    }
    if (cover.upTo - cover.after > this.o.replayMaxOffsets) return this.reset(conn, channel, 'beyond_replay_limit');
    conn.beginCatchUp(channel);
    stream.replay.read(partition, cover.after, cover.upTo, channel).then(
      (events) => {
        if (conn.closed) return;
        const now = Date.now();
        conn.endCatchUp(channel, events.map((r) => this.o.factory.make(r.event, partition, r.offset, now)), cover.upTo);
        this.o.hub.wake(conn);
        this.o.onResume?.('kafka');
      },
      (err: unknown) => {
        if (conn.closed) return;
        const reason: ResetReason = err instanceof ReplayUnavailableError ? err.reason : 'replay_failed';
        this.o.logger.warn({ err, channel_partition: partition }, 'resume from kafka failed; sending reset');
        this.reset(conn, channel, reason);
        conn.endCatchUp(channel, [], cover.upTo);
        this.o.hub.wake(conn);
      },
    );
  }

  private reset(conn: Connection, channel: string, reason: ResetReason): void {
    conn.sendControl(resetFrame(channel, reason, this.o.streams.for(channel).windows.latest(channel)?.position ?? null));
    this.o.onResume?.('reset');
  }
}
