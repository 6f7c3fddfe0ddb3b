import { encodeEnvelope, formatPosition } from '@fanout/protocol';
import type { IncomingEvent } from '@fanout/kafka';
import { QueuePolicies, type QueuePolicy } from './queue-policy.js';

/**
 * One message on its way out, built once per message per gateway (for a record someone here wants,
 * or read back from a channel window) and shared by every connection's queue and long poll: the
 * encoded frame plus what the queue needs to apply its policy.
 *
 * The frame is kept as the encoded JSON text until something needs its bytes (the first socket
 * write, or a queue), then as bytes only: a message answered only as JSON (polls, history) is
 * never encoded to UTF-8. `bytes`, its UTF-8 length, is fixed at creation so that every count
 * (queues, budget) adds and removes the same amount whichever form it is in.
 */
export class Outgoing {
  private text: string | null;
  private buf: Buffer | null = null;
  private pos: string | undefined = undefined;
  /** The frame's length in bytes (UTF-8). */
  readonly bytes: number;

  constructor(
    frameText: string,
    readonly channel: string,
    readonly partition: number,
    readonly offset: number,
    /** When the gateway dispatched it (ms). */
    readonly at: number,
    readonly policy: QueuePolicy,
    /** For `conflate`: messages with the same key replace each other while the connection is blocked. */
    readonly conflateKey: string | null,
    private readonly epoch: string,
  ) {
    this.text = frameText;
    this.bytes = Buffer.byteLength(frameText);
  }

  /** The encoded frame, as bytes (encoded once, on first use; shared by every socket). */
  get frame(): Buffer {
    if (this.buf === null) {
      this.buf = Buffer.from(this.text!);
      this.text = null;
    }
    return this.buf;
  }

  /** The encoded frame, as text (for JSON bodies that embed it: polls, history). */
  get json(): string {
    return this.text ?? this.buf!.toString();
  }

  /** The message's position (`epoch:partition:offset`), built when first asked (SSE ids, gaps, cursors), then kept. */
  get position(): string {
    return (this.pos ??= formatPosition({ epoch: this.epoch, partition: this.partition, offset: this.offset }));
  }
}

/** Builds Outgoing messages: one envelope per message per gateway, whatever its source (live or replay). */
export class OutgoingFactory {
  constructor(
    private readonly epoch: string,
    private readonly policies: QueuePolicies,
  ) {}

  make(e: IncomingEvent, partition: number, offset: number, now = Date.now()): Outgoing {
    const position = formatPosition({ epoch: this.epoch, partition, offset });
    const text = encodeEnvelope({ channel: e.channel, eventId: e.id, position, publishedAt: e.publishedAt, dataJson: e.dataJson });
    const ns = this.policies.forChannel(e.channel);
    return new Outgoing(
      text,
      e.channel,
      partition,
      offset,
      now,
      ns.policy,
      ns.policy === 'conflate' ? QueuePolicies.conflateKey(e.channel, ns.keyField, e.dataJson) : null,
      this.epoch,
    );
  }
}
