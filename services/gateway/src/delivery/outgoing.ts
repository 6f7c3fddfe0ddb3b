import { encodeEnvelope, formatPosition, namespaceOf } from '@fanout/protocol';
import type { IncomingEvent } from '@fanout/kafka';
import { QueuePolicies, type QueuePolicy } from './queue-policy.js';

/**
 * One message on its way out, built once per message per gateway and shared by every
 * connection's queue: the encoded frame plus what the queue needs to apply its policy.
 */
export interface Outgoing {
  frame: Buffer;
  channel: string;
  position: string;
  partition: number;
  offset: number;
  /** When the gateway dispatched it (ms), for the window's age bound. */
  at: number;
  policy: QueuePolicy;
  /** For `conflate`: messages with the same key replace each other while the connection is blocked. */
  conflateKey: string | null;
}


/** Builds Outgoing messages: one envelope per message per gateway, whatever its source (live or replay). */
export class OutgoingFactory {
  constructor(
    private readonly epoch: string,
    private readonly policies: QueuePolicies,
  ) {}

  make(e: IncomingEvent, partition: number, offset: number, now = Date.now()): Outgoing {
    const position = formatPosition({ epoch: this.epoch, partition, offset });
    const frame = Buffer.from(encodeEnvelope({ channel: e.channel, eventId: e.id, position, publishedAt: e.publishedAt, dataJson: e.dataJson }));
    const ns = this.policies.forNamespace(namespaceOf(e.channel));
    return {
      frame,
      channel: e.channel,
      position,
      partition,
      offset,
      at: now,
      policy: ns.policy,
      conflateKey: ns.policy === 'conflate' ? QueuePolicies.conflateKey(e.channel, ns.keyField, e.dataJson) : null,
    };
  }
}
