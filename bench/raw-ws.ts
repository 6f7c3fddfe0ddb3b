/**
 * A minimal RFC 6455 WebSocket client on a plain TCP socket, for load generators that must leave
 * the CPU to the server on a small machine (about 4x cheaper per frame than the `ws` package):
 * the HTTP upgrade (and the refusal of one: status, Retry-After, body), masked client frames,
 * unmasked server frames parsed in place, pong replies to pings, and one close report.
 */
import { randomBytes } from 'node:crypto';
import { connect as netConnect, type Socket } from 'node:net';

export interface RawWsHandlers {
  /** The server answered 101: frames may be sent. */
  open(): void;
  /** One text frame (the payload is only valid during the call). */
  text(payload: Buffer): void;
  /** The connection ended after it had opened: the close frame's code, or 1006 without one. */
  close(code: number): void;
  /**
   * The connection never opened: the server answered something other than 101 (status, the
   * Retry-After it named in ms, from the body's retry_after_ms or the header), or the socket
   * failed (status 0: refused, reset, timed out).
   */
  refused(status: number, retryAfterMs: number | null, body: string): void;
  /** The TCP connection is established (diagnostics). */
  connected?(): void;
  /** A ping arrived (already answered with a pong; diagnostics). */
  ping?(): void;
}

export interface RawWsOptions {
  /** Source address to connect from (spreads clients over 127.0.0.x when ports run short). */
  localAddress?: string;
  /** Give up on a handshake after this long, in ms. */
  handshakeTimeoutMs?: number;
}

export class RawWs {
  private readonly sock: Socket;
  private buf: Buffer = Buffer.alloc(0);
  private opened = false;
  private ended = false;
  private timer: NodeJS.Timeout | null;

  constructor(
    url: URL,
    private readonly h: RawWsHandlers,
    o: RawWsOptions = {},
  ) {
    this.sock = netConnect({
      host: url.hostname,
      port: Number(url.port),
      noDelay: true,
      ...(o.localAddress ? { localAddress: o.localAddress } : {}),
    });
    this.timer = setTimeout(() => this.fail(0, null, 'handshake timed out'), o.handshakeTimeoutMs ?? 20_000);
    this.sock.on('connect', () => {
      this.h.connected?.();
      this.sock.write(
        `GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    this.sock.on('data', (chunk: Buffer) => this.onData(chunk));
    this.sock.on('error', (err: NodeJS.ErrnoException) => {
      if (!this.opened) this.fail(0, null, err.code ?? 'socket error');
    });
    this.sock.on('close', () => {
      if (this.opened) this.finish(1006);
      else this.fail(0, null, 'socket closed before the upgrade');
    });
  }

  get isOpen(): boolean {
    return this.opened && !this.ended;
  }

  send(text: string): void {
    if (!this.isOpen) return;
    this.frame(0x1, Buffer.from(text));
  }

  /** Stops reading the socket (a stalled client): the kernel's buffers fill, then the server's. */
  stallReading(): void {
    this.sock.pause();
  }

  /** Drops the connection without a close handshake and without reporting it. */
  destroy(): void {
    this.ended = true;
    this.clearTimer();
    this.sock.destroy();
  }

  /** Any frame, as given (the fuzzer's: binary, invalid UTF-8, fragments with `fin` false, any size). */
  sendFrame(opcode: number, payload: Buffer, fin = true): void {
    if (!this.isOpen) return;
    this.frame(opcode, payload, fin);
  }

  private frame(opcode: number, payload: Buffer, fin = true): void {
    // Client frames are masked (RFC 6455 5.3).
    const mask = randomBytes(4);
    const n = payload.length;
    const b0 = (fin ? 0x80 : 0) | opcode;
    let head: Buffer;
    if (n < 126) head = Buffer.from([b0, 0x80 | n]);
    else if (n < 65536) head = Buffer.from([b0, 0x80 | 126, n >> 8, n & 0xff]);
    else {
      head = Buffer.alloc(10);
      head[0] = b0;
      head[1] = 0x80 | 127;
      head.writeBigUInt64BE(BigInt(n), 2);
    }
    const body = Buffer.allocUnsafe(n);
    for (let k = 0; k < n; k++) body[k] = payload[k]! ^ mask[k & 3]!;
    this.sock.write(Buffer.concat([head, mask, body]));
  }

  private onData(chunk: Buffer): void {
    if (this.ended) return;
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    if (!this.opened) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = this.buf.subarray(0, end).toString();
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
      if (status !== 101) {
        const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (this.buf.length - end - 4 < length) return; // the body is still coming
        const body = this.buf.subarray(end + 4, end + 4 + length).toString();
        const header = /\r\nretry-after: *(\d+)/i.exec(head)?.[1];
        const fromBody = /"retry_after_ms":(\d+)/.exec(body)?.[1];
        this.fail(status, fromBody !== undefined ? Number(fromBody) : header !== undefined ? Number(header) * 1000 : null, body);
        return;
      }
      this.opened = true;
      this.clearTimer();
      this.buf = this.buf.subarray(end + 4);
      this.h.open();
    }
    let off = 0;
    const buf = this.buf;
    while (!this.ended && buf.length - off >= 2) {
      const opcode = buf[off]! & 0x0f;
      let len = buf[off + 1]! & 0x7f;
      let hdr = 2;
      if (len === 126) {
        if (buf.length - off < 4) break;
        len = buf.readUInt16BE(off + 2);
        hdr = 4;
      } else if (len === 127) {
        if (buf.length - off < 10) break;
        len = Number(buf.readBigUInt64BE(off + 2));
        hdr = 10;
      }
      if (buf.length - off < hdr + len) break;
      const payload = buf.subarray(off + hdr, off + hdr + len);
      off += hdr + len;
      if (opcode === 0x1) this.h.text(payload);
      else if (opcode === 0x9) {
        this.frame(0xa, Buffer.from(payload));
        this.h.ping?.();
      } else if (opcode === 0x8) {
        this.finish(payload.length >= 2 ? payload.readUInt16BE(0) : 1005);
        this.sock.destroy();
      }
    }
    this.buf = off === buf.length ? Buffer.alloc(0) : buf.subarray(off);
  }

  private fail(status: number, retryAfterMs: number | null, body: string): void {
    if (this.ended) return;
    this.ended = true;
    this.clearTimer();
    this.sock.destroy();
    this.h.refused(status, retryAfterMs, body);
  }

  private finish(code: number): void {
    if (this.ended) return;
    this.ended = true;
    this.clearTimer();
    this.h.close(code);
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
