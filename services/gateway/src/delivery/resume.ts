/**
 * Resume: a client subscribes with the last position it saw on a channel and gets everything after
 * it, exactly once and in order, then the live stream. In order of preference:
 *
 * 1. nothing to replay: the position is at or past what this gateway has read (a client moving
 *    from a gateway that was ahead has its later messages skipped, not sent twice);
 * 2. the in-memory window covers it (a partition still warming is waited for, then served from
 *    the window): the common case after a drain or a crash, since windows are warmed;
 * 3. a bounded read of the channel's partition from Kafka, shared with every other resume of that
 *    partition (ReplayReader);
 * 4. otherwise an explicit `reset` naming the reason. Never a silent gap.
 */
import { type Position, resetFrame, type ResetReason } from '@fanout/protocol';
import type { Logger } from '@fanout/observability';
import type { Connection } from './connection.js';
import type { OutgoingFactory } from './outgoing.js';
import type { Hub } from './hub.js';
import type { Stream, Streams } from './streams.js';
import { ReplayUnavailableError } from '../kafka/replay-reader.js';

export type ResumeSource = 'window' | 'kafka' | 'reset';

export interface ResumerOptions {
  hub: Hub;
  streams: Streams;
  factory: OutgoingFactory;
  epoch: string;
  /** Most offsets of a partition a resume may read from Kafka; further back is a reset. */
  replayMaxOffsets: number;
  logger: Logger;
  onResume?(source: ResumeSource): void;
}

export class Resumer {
  constructor(private readonly o: ResumerOptions) {}

  /** Call right after subscribing `conn` to `channel` (in the same turn). */
  resume(conn: Connection, channel: string, pos: Position): void {
    if (pos.epoch !== this.o.epoch) return this.reset(conn, channel, 'epoch_changed');
    const stream = this.o.streams.for(channel);
    const partition = this.o.streams.partitionOf(channel);
    if (pos.partition !== partition) return this.reset(conn, channel, 'partition_changed');
    if (!stream.warmup.warming(partition)) return this.serve(conn, channel, pos.offset, stream, partition, false);
    // Live messages wait until the partition's recent past is in the window.
    conn.beginCatchUp(channel);
    stream.warmup.whenWarm(partition, () => {
      if (!conn.closed) this.serve(conn, channel, pos.offset, stream, partition, true);
    });
  }

  /** `held`: live messages of the channel are being held (beginCatchUp) and must be released. */
  private serve(conn: Connection, channel: string, offset: number, stream: Stream, partition: number, held: boolean): void {
    const last = stream.windows.lastOffset(partition) ?? -1;
    if (offset >= last) {
      if (offset > last) conn.alreadyHas(channel, offset);
      if (held) conn.endCatchUp(channel, [], offset);
      this.o.hub.wake(conn);
      this.o.onResume?.('window');
      return;
    }
    const cover = stream.windows.since(channel, partition, offset);
    if (cover.kind === 'window') {
      if (held) conn.endCatchUp(channel, cover.messages, last);
      else for (const m of cover.messages) conn.enqueue(m);
      this.o.hub.wake(conn);
      this.o.onResume?.('window');
      return;
    }
    const release = (replayed: Parameters<Connection['endCatchUp']>[1]) => {
      conn.endCatchUp(channel, replayed, cover.upTo);
      this.o.hub.wake(conn);
    };
    if (cover.upTo - cover.after > this.o.replayMaxOffsets) {
      this.reset(conn, channel, 'beyond_replay_limit');
      if (held) release([]);
      return;
    }
    if (!held) conn.beginCatchUp(channel);
    stream.replay.read(partition, cover.after, cover.upTo, channel).then(
      (events) => {
        if (conn.closed) return;
        const now = Date.now();
        release(events.map((r) => this.o.factory.make(r.event, partition, r.offset, now)));
        this.o.onResume?.('kafka');
      },
      (err: unknown) => {
        if (conn.closed) return;
        const reason: ResetReason = err instanceof ReplayUnavailableError ? err.reason : 'replay_failed';
        // A bound that was hit is an expected answer (no stack); anything else is worth one.
        if (err instanceof ReplayUnavailableError)
          this.o.logger.warn(
            { reason, detail: err.message, channel_partition: partition },
            'resume from kafka not possible; sending reset',
          );
        else this.o.logger.warn({ err, channel_partition: partition }, 'resume from kafka failed; sending reset');
        this.reset(conn, channel, reason);
        release([]);
      },
    );
  }

  private reset(conn: Connection, channel: string, reason: ResetReason): void {
    conn.sendControl(resetFrame(channel, reason, this.o.streams.for(channel).windows.latest(channel)?.position ?? null));
    this.o.onResume?.('reset');
  }
}
