import type { QueuePolicy } from './queue-policy.js';

/**
 * One message on its way out, built once per message per gateway and shared by every
 * connection's queue: the encoded frame plus what the queue needs to apply its policy.
 */
export interface Outgoing {
  frame: Buffer;
  channel: string;
  position: string;
  policy: QueuePolicy;
  /** For `conflate`: messages with the same key replace each other while the connection is blocked. */
  conflateKey: string | null;
}
