/**
 * One client connection on the delivery path: its subscriptions and the queue of frames it is
 * owed but has not been written yet.
 *
 * Frames are shared Buffers (encoded once per message per gateway). `enqueue` only appends;
 * `flush` writes everything that fits in one corked batch, stopping when the socket's buffered
 * amount reaches its limit; the rest waits for the transport's drain event. A queue past its bounds
 * means the client cannot keep up: it is closed as a slow consumer (4001) rather than grow memory.
 */
import { CLOSE } from '@fanout/protocol';
import { ANONYMOUS, type Principal } from '@fanout/auth';
import { WriteResult, type Sink } from './sink.js';

export interface ConnectionLimits {
  socketBufferBytes: number;
  queueMaxMessages: number;
  queueMaxBytes: number;
}

export interface ConnectionStats {
  delivered: number;
}

let nextId = 1;

export class Connection {
  readonly id = nextId++;
  /** Exact channel subscriptions. */
  readonly channels = new Set<string>();
  /** Namespace wildcard subscriptions (`prices:*` -> `prices`). */
  readonly namespaces = new Set<string>();
  closed = false;
  /** Who is connected: set from the connect token once verified; anonymous without one. */
  principal: Principal = ANONYMOUS;
  /** False until the connect token (if any) is verified; frames wait until then. */
  authenticated = false;
  /** Set while the connection sits in the hub's dirty list (so it is listed once per turn). */
  dirty = false;
  private queue: Buffer[] = [];
  private head = 0;
  private queuedBytes = 0;
  private errorTimes: number[] = [];

  constructor(
    readonly sink: Sink,
    private readonly limits: ConnectionLimits,
    readonly meta: { transport: string; remote?: string } = { transport: 'websocket' },
  ) {}

  get queuedMessages(): number {
    return this.queue.length - this.head;
  }

  get queuedByteCount(): number {
    return this.queuedBytes;
  }

  /** Adds a frame to what this connection is owed. Returns false if the queue overflowed (closed). */
  enqueue(frame: Buffer): boolean {
    if (this.closed) return false;
    this.queue.push(frame);
    this.queuedBytes += frame.length;
    if (this.queue.length - this.head > this.limits.queueMaxMessages || this.queuedBytes > this.limits.queueMaxBytes) {
      this.closeWith(CLOSE.SLOW_CONSUMER.code, CLOSE.SLOW_CONSUMER.reason);
      return false;
    }
    return true;
  }

  /**
   * Writes queued frames in one corked batch while the socket accepts them. Returns the number
   * of frames written.
   */
  flush(): number {
    if (this.closed || this.head === this.queue.length) return 0;
    let written = 0;
    const limit = this.limits.socketBufferBytes;
    this.sink.cork(() => {
      while (this.head < this.queue.length) {
        if (this.sink.bufferedAmount() >= limit) break;
        const frame = this.queue[this.head]!;
        const r = this.sink.write(frame);
        if (r === WriteResult.Dropped) break;
        this.queue[this.head] = undefined as unknown as Buffer;
        this.head++;
        this.queuedBytes -= frame.length;
        written++;
        if (r === WriteResult.Backpressure) break;
      }
    });
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return written;
  }

  /** Writes a control frame now (answers, errors), ahead of nothing: control frames are rare. */
  sendControl(text: string): void {
    if (this.closed) return;
    this.sink.cork(() => this.sink.write(Buffer.from(text)));
  }

  /** Counts a protocol error; true if the client exceeded its allowance and was closed. */
  countError(maxPer10s: number, now = Date.now()): boolean {
    this.errorTimes.push(now);
    while (this.errorTimes.length > 0 && this.errorTimes[0]! < now - 10_000) this.errorTimes.shift();
    if (this.errorTimes.length > maxPer10s) {
      this.closeWith(CLOSE.PROTOCOL_VIOLATION.code, CLOSE.PROTOCOL_VIOLATION.reason);
      return true;
    }
    return false;
  }

  closeWith(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.dropQueue();
    this.sink.close(code, reason);
  }

  /** Called by the transport once the socket is gone (whoever closed it). */
  markClosed(): void {
    this.closed = true;
    this.dropQueue();
  }

  private dropQueue(): void {
    this.queue = [];
    this.head = 0;
    this.queuedBytes = 0;
  }
}
