/**
 * Messages for the delivery core's unit tests, built the way the gateway builds them (one
 * OutgoingFactory), under these namespace policies: `prices` conflates per channel, `ticks`
 * conflates per `sym` field, `orders` disconnects, everything else drops.
 */
import { OutgoingFactory, type Outgoing } from '../src/delivery/outgoing.js';
import { QueuePolicies } from '../src/delivery/queue-policy.js';

export const EPOCH = 'e1';
const factory = new OutgoingFactory(EPOCH, new QueuePolicies(['prices=conflate', 'ticks=conflate:sym', 'orders=disconnect'], 'drop'));

/** One message of `channel` at `offset` (partition 0). */
export function msg(channel: string, offset: number, data: Record<string, unknown> = { n: offset }): Outgoing {
  return factory.make(
    { channel, id: `${channel}-${offset}`, publishedAt: 1_700_000_000_000, dataJson: JSON.stringify(data) },
    0,
    offset,
    0,
  );
}

/** `count` consecutive messages of `channel` from offset `from`. */
export function msgs(channel: string, from: number, count: number): Outgoing[] {
  return Array.from({ length: count }, (_, i) => msg(channel, from + i));
}
