/**
 * The two kinds of stream a gateway serves (DESIGN "two kinds of stream"): broadcast channels,
 * read from every partition of the broadcast topic, and user channels, read from the partitions of
 * the users topic that this gateway owns in its region's consumer group. Each has its own windows,
 * warm-up and replay view, since positions are per topic.
 */
import { isUserChannel } from '@fanout/protocol';
import { keyFor, partitionFor } from '@fanout/kafka';
import type { ChannelWindows } from './channel-window.js';
import type { WarmUp } from './warm-up.js';
import type { Replay } from '../kafka/replay-reader.js';

export interface Stream {
  kind: 'broadcast' | 'users';
  windows: ChannelWindows;
  /** Partitions whose recent past is being loaded into the windows. */
  warmup: WarmUp;
  replay: Replay;
  partitions(): number;
  /** Whether this gateway serves the partition now (always, for broadcast). */
  owns(partition: number): boolean;
}

export class Streams {
  constructor(
    readonly broadcast: Stream,
    readonly users: Stream,
  ) {}

  for(channel: string): Stream {
    return isUserChannel(channel) ? this.users : this.broadcast;
  }

  /** The partition a channel's messages are on (Kafka's default partitioner of the record key). */
  partitionOf(channel: string): number {
    return partitionFor(keyFor(channel), Math.max(1, this.for(channel).partitions()));
  }
}
