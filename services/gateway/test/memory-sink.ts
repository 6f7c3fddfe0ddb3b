/**
 * An in-memory transport for the delivery core's unit tests (centrifuge's hub_test.go drives its
 * hub the same way): it records every frame written, in order, with the corked batch it left in,
 * and can simulate a socket that is full or backpressured.
 */
import { WriteResult, type Sink } from '../src/delivery/sink.js';
import type { Outgoing } from '../src/delivery/outgoing.js';

export interface Frame {
  t: string;
  ch?: string;
  pos?: string;
  data?: unknown;
  from?: string;
  to?: string;
  count?: number;
  [k: string]: unknown;
}

export class MemorySink implements Sink {
  /** Every frame written, decoded, in write order. */
  readonly frames: Frame[] = [];
  /** The number of frames each cork() call wrote (one entry per batch, i.e. per syscall). */
  readonly batches: number[] = [];
  /** Bytes written and not yet "accepted by the kernel": grows with each write until drained. */
  buffered = 0;
  /** Results the next writes return, in order (then Ok). Dropped frames are not recorded. */
  readonly script: WriteResult[] = [];
  closedWith: { code: number; reason: string } | null = null;
  private inCork = false;

  cork(fn: () => void): void {
    if (this.inCork) throw new Error('nested cork');
    this.inCork = true;
    const before = this.frames.length;
    try {
      fn();
    } finally {
      this.inCork = false;
    }
    this.batches.push(this.frames.length - before);
  }

  write(frame: Buffer, _item?: Outgoing): WriteResult {
    if (!this.inCork) throw new Error('write outside cork');
    const r = this.script.shift() ?? WriteResult.Ok;
    if (r === WriteResult.Dropped) return r;
    this.frames.push(JSON.parse(frame.toString()) as Frame);
    this.buffered += frame.length;
    return r;
  }

  bufferedAmount(): number {
    return this.buffered;
  }

  close(code: number, reason: string): void {
    this.closedWith = { code, reason };
  }

  /** The socket sent everything it held. */
  drained(): void {
    this.buffered = 0;
  }

  /** Frames written since the last take(), named by frameName(); then forgets them. */
  take(): string[] {
    return this.frames.splice(0).map(frameName);
  }
}

/**
 * A compact name for a frame, so tests compare the exact sequence a client saw: `channel@offset`
 * for a message, `gap channel from..to xcount` (offsets) for a gap notice, else the JSON.
 */
export function frameName(f: Frame): string {
  if (f.t === 'msg') return `${f.ch}@${String(f.pos).split(':')[2]}`;
  if (f.t === 'gap') return `gap ${f.ch} ${offsetOf(f.from)}..${offsetOf(f.to)} x${f.count}`;
  return JSON.stringify(f);
}

const offsetOf = (pos: unknown) => String(pos).split(':')[2];
