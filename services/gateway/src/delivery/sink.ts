/**
 * What the delivery path needs from a transport: a place to write encoded frames. WebSocket is the
 * first transport; SSE and long polling implement the same interface.
 */
import type { Outgoing } from './outgoing.js';

export const WriteResult = {
  /** Written (or buffered within the socket's limit). */
  Ok: 0,
  /** Buffered, but the socket is backpressured: stop writing until drain. */
  Backpressure: 1,
  /** Not written: the socket's buffer is full. */
  Dropped: 2,
} as const;
export type WriteResult = (typeof WriteResult)[keyof typeof WriteResult];

export interface Sink {
  /** Runs `fn` with the socket corked, so every write in it leaves in one syscall. */
  cork(fn: () => void): void;
  /** Writes one frame; `item` is given for messages (SSE uses its position as the event id). */
  write(frame: Buffer, item?: Outgoing): WriteResult;
  /** Bytes written but not yet accepted by the kernel. */
  bufferedAmount(): number;
  /** Closes with a code from CLOSE (close-codes.ts). */
  close(code: number, reason: string): void;
}
