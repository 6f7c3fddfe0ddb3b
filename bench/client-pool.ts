/**
 * The benchmark's WebSocket clients (npm `ws`, no compression), all subscribed to one channel.
 *
 * Receiving is kept cheap: a `msg` frame is recognised by its first bytes and counted; while
 * latency is being measured, the envelope's `"ts":` is found with indexOf and its digits read in
 * place (no JSON.parse), and the latency goes into a 1 ms histogram.
 *
 * A ClientPool lives in the bench process, or in one client worker process (client-worker.ts)
 * when the clients are split across two processes; ClientSide is what bench/fanout.ts talks to
 * either way.
 *
 * Two protocols (PoolOptions.protocol): `fanout` (the gateway's, the default) and `centrifugo`
 * (Centrifugo's JSON protocol, for bench/peers.ts: a connect and a subscribe command in one
 * frame; publications arrive as `push` replies, possibly several in one frame separated by
 * newlines, each counted; the publisher's ts is read from the publication's data).
 */
import WebSocket from 'ws';
import { RawWs } from './raw-ws.js';

/**
 * Which client implementation (BENCH_CLIENT_IMPL): `raw` (default) is a minimal RFC 6455 client
 * on a plain TCP socket (handshake, masked client frames, unmasked server frames, pong replies),
 * about 4x cheaper per frame than `ws`, so that the load generator leaves CPU to the server on a
 * small machine; `ws` is the npm `ws` client.
 */
const CLIENT_IMPL = process.env.BENCH_CLIENT_IMPL === 'ws' ? 'ws' : 'raw';

export const MAX_LAT_MS = 60_000;
const TS_NEEDLE = Buffer.from('"ts":');

/** Which server the clients speak to: fanout's gateway, or Centrifugo (JSON protocol over WebSocket). */
export type ClientProtocol = 'fanout' | 'centrifugo';

export interface PoolOptions {
  /** `fanout` (default) or `centrifugo`; `centrifugo` always uses the raw client. */
  protocol?: ClientProtocol;
  /** Source addresses to connect from, round-robin (127.0.0.x spreads the ephemeral ports); default: the OS's choice. */
  localAddresses?: string[];
}

export interface SideStats {
  received: number;
  /** Clients whose count since mark() differs from the expected one. */
  short: number;
  /** Sparse latency histogram: [ms, count]. */
  latency: [number, number][];
  closes: Record<string, number>;
  /** Text frames received and their bytes on the wire (WebSocket header + payload), all clients. */
  frames?: number;
  wireBytes?: number;
}

export class ClientPool {
  readonly sockets: WebSocket[] = [];
  /** `msg` frames received, all clients. */
  received = 0;
  perClient: Uint32Array;
  private marked: Uint32Array;
  /** Latency histogram, 1 ms buckets (the envelope's ts has 1 ms resolution). */
  latency = new Float64Array(MAX_LAT_MS + 1);
  measuring = false;
  closes = new Map<number, number>();
  /** Text frames received, and their size as WebSocket frames (server frames are unmasked: 2, 4 or 10 header bytes). */
  frames = 0;
  wireBytes = 0;

  private countFrame(len: number): void {
    this.frames++;
    this.wireBytes += len + (len < 126 ? 2 : len < 65536 ? 4 : 10);
  }

  readonly protocol: ClientProtocol;
  private readonly localAddresses: string[];
  /** Centrifugo: the first bytes of a publication pushed on this pool's channel. */
  private readonly pubPrefix: Buffer;

  constructor(
    readonly n: number,
    readonly channel: string,
    opts: PoolOptions = {},
  ) {
    this.perClient = new Uint32Array(n);
    this.marked = new Uint32Array(n);
    this.protocol = opts.protocol ?? 'fanout';
    this.localAddresses = opts.localAddresses ?? [];
    this.pubPrefix = Buffer.from(`{"push":{"channel":${JSON.stringify(channel)},"pub":`);
  }

  setMeasuring(on: boolean): void {
    if (on) this.latency.fill(0);
    this.measuring = on;
  }

  mark(): void {
    this.marked = this.perClient.slice();
  }

  stats(expectedSinceMark: number): SideStats {
    let short = 0;
    for (let i = 0; i < this.n; i++) if (this.perClient[i]! - this.marked[i]! !== expectedSinceMark) short++;
    const latency: [number, number][] = [];
    for (let i = 0; i < this.latency.length; i++) if (this.latency[i]! > 0) latency.push([i, this.latency[i]!]);
    return {
      received: this.received,
      short,
      latency,
      closes: Object.fromEntries(this.closes),
      frames: this.frames,
      wireBytes: this.wireBytes,
    };
  }

  /** Counts one text frame from client `i`; true if it was a message (not a control answer). */
  private onText(i: number, data: Buffer): boolean {
    // `{"t":"msg",...`: byte 6 is the m of msg. Counting is all most frames cost here.
    if (data[6] !== 0x6d || data[2] !== 0x74) return false;
    this.received++;
    this.perClient[i]!++;
    if (this.measuring) this.recordLatency(data, 0, data.length);
    return true;
  }

  /** Latency of one delivery: now minus the first `"ts":<ms>` found in data[from, to). */
  private recordLatency(data: Buffer, from: number, to: number): void {
    const at = data.indexOf(TS_NEEDLE, from);
    if (at < 0 || at >= to) return;
    let ts = 0;
    for (let k = at + 5; k < to; k++) {
      const d = data[k]! - 48;
      if (d < 0 || d > 9) break;
      ts = ts * 10 + d;
    }
    const lat = Date.now() - ts;
    this.latency[lat < 0 ? 0 : lat > MAX_LAT_MS ? MAX_LAT_MS : lat]!++;
  }

  /**
   * Counts the publications in one Centrifugo frame from client `i` (one JSON reply per line);
   * returns the frame's other lines (command replies, pings), usually none.
   */
  private onCentrifugoText(i: number, data: Buffer): Buffer[] {
    let other: Buffer[] | null = null;
    const p = this.pubPrefix;
    for (let off = 0; off < data.length;) {
      let end = data.indexOf(0x0a, off);
      if (end < 0) end = data.length;
      if (end - off > p.length && data.compare(p, 0, p.length, off, off + p.length) === 0) {
        this.received++;
        this.perClient[i]!++;
        if (this.measuring) this.recordLatency(data, off + p.length, end);
      } else if (end > off) (other ??= []).push(data.subarray(off, end));
      off = end + 1;
    }
    return other ?? [];
  }

  private readonly rawSockets: RawWs[] = [];

  /**
   * The raw client (bench/raw-ws.ts): an HTTP upgrade, then frames parsed in place. A 503 from the
   * gateway's admission control is retried after the Retry-After it names, as the SDK does.
   */
  private connectRaw(url: string, i: number): Promise<void> {
    if (this.protocol === 'centrifugo') return this.connectCentrifugo(url, i);
    const u = new URL(url);
    return new Promise((resolve, reject) => {
      let subscribed = false;
      const timer = setTimeout(() => reject(new Error(`client ${i}: no 'subscribed' within 20 s`)), 20_000);
      const open = () => {
        const ws: RawWs = new RawWs(
          u,
          {
            open: () => ws.send(JSON.stringify({ op: 'subscribe', id: 1, channels: [this.channel] })),
            text: (payload) => {
              this.countFrame(payload.length);
              if (this.onText(i, payload) || subscribed) return;
              const f = JSON.parse(payload.toString()) as { t?: string };
              if (f.t === 'subscribed') {
                subscribed = true;
                clearTimeout(timer);
                resolve();
              } else if (f.t === 'error') fail(new Error(`client ${i}: ${payload.toString()}`));
            },
            close: (code) => {
              this.closes.set(code, (this.closes.get(code) ?? 0) + 1);
              fail(new Error(`client ${i}: closed (${code}) before subscribing`));
            },
            refused: (status, retryAfterMs, body) => {
              if (status === 503 && retryAfterMs !== null && !subscribed) setTimeout(open, retryAfterMs);
              else fail(new Error(`client ${i}: upgrade refused: ${status} ${body.slice(0, 60)}`));
            },
          },
          this.rawOptions(i),
        );
        this.rawSockets.push(ws);
      };
      const fail = (err: Error) => {
        if (!subscribed) {
          clearTimeout(timer);
          reject(err);
        }
      };
      open();
    });
  }

  private rawOptions(i: number): { localAddress?: string } {
    const a = this.localAddresses;
    return a.length > 0 ? { localAddress: a[i % a.length]! } : {};
  }

  /**
   * A Centrifugo client (JSON protocol): connect (anonymous, no token) and subscribe in one frame;
   * subscribed once the subscribe reply (id 2) arrives. Server pings (`{}`) are answered with `{}`.
   */
  private connectCentrifugo(url: string, i: number): Promise<void> {
    const u = new URL(url);
    return new Promise((resolve, reject) => {
      let subscribed = false;
      const timer = setTimeout(() => fail(new Error(`client ${i}: no subscribe reply within 20 s`)), 20_000);
      const fail = (err: Error) => {
        if (!subscribed) {
          clearTimeout(timer);
          reject(err);
        }
      };
      const ws: RawWs = new RawWs(
        u,
        {
          open: () => ws.send(`{"id":1,"connect":{}}\n{"id":2,"subscribe":{"channel":${JSON.stringify(this.channel)}}}`),
          text: (payload) => {
            this.countFrame(payload.length);
            for (const line of this.onCentrifugoText(i, payload)) {
              if (line.length === 2 && line[0] === 0x7b && line[1] === 0x7d) {
                ws.send('{}');
                continue;
              }
              if (subscribed) continue;
              const r = JSON.parse(line.toString()) as { id?: number; error?: unknown; subscribe?: unknown };
              if (r.error !== undefined) fail(new Error(`client ${i}: ${line.toString()}`));
              else if (r.id === 2 && r.subscribe !== undefined) {
                subscribed = true;
                clearTimeout(timer);
                resolve();
              }
            }
          },
          close: (code) => {
            this.closes.set(code, (this.closes.get(code) ?? 0) + 1);
            fail(new Error(`client ${i}: closed (${code}) before subscribing`));
          },
          refused: (status, _retryAfterMs, body) => fail(new Error(`client ${i}: upgrade refused: ${status} ${body.slice(0, 60)}`)),
        },
        this.rawOptions(i),
      );
      this.rawSockets.push(ws);
    });
  }

  private connectOne(url: string, i: number): Promise<void> {
    if (CLIENT_IMPL === 'raw' || this.protocol === 'centrifugo') return this.connectRaw(url, i);
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { perMessageDeflate: false, skipUTF8Validation: true });
      this.sockets.push(ws);
      let subscribed = false;
      const timer = setTimeout(() => reject(new Error(`client ${i}: no 'subscribed' within 20 s`)), 20_000);
      ws.on('open', () => ws.send(JSON.stringify({ op: 'subscribe', id: 1, channels: [this.channel] })));
      ws.on('message', (data: Buffer) => {
        this.countFrame(data.length);
        if (this.onText(i, data)) return;
        if (!subscribed) {
          const f = JSON.parse(data.toString()) as { t?: string };
          if (f.t === 'subscribed') {
            subscribed = true;
            clearTimeout(timer);
            resolve();
          } else if (f.t === 'error') {
            clearTimeout(timer);
            reject(new Error(`client ${i}: ${data.toString()}`));
          }
        }
      });
      ws.on('close', (code) => {
        this.closes.set(code, (this.closes.get(code) ?? 0) + 1);
        if (!subscribed) {
          clearTimeout(timer);
          reject(new Error(`client ${i}: closed (${code}) before subscribing`));
        }
      });
      ws.on('error', (err) => {
        if (!subscribed) {
          clearTimeout(timer);
          reject(err);
        }
      });
    });
  }

  /** Opens the connections `parallel` at a time; each is subscribed when this resolves. */
  async connect(url: string, parallel: number): Promise<void> {
    for (let base = 0; base < this.n; base += parallel) {
      const batch: Promise<void>[] = [];
      for (let i = base; i < Math.min(this.n, base + parallel); i++) batch.push(this.connectOne(url, i));
      await Promise.all(batch);
    }
  }

  async close(): Promise<void> {
    for (const s of this.rawSockets) s.destroy();
    const closed = this.sockets
      .filter((s) => s.readyState !== WebSocket.CLOSED)
      .map((s) => new Promise<void>((r) => s.once('close', () => r())));
    for (const s of this.sockets) s.terminate();
    await Promise.race([Promise.all(closed), new Promise((r) => setTimeout(r, 5000))]);
  }
}

/** Messages between bench/fanout.ts and bench/client-worker.ts (IPC). */
export type ToWorker =
  | { op: 'connect'; url: string; n: number; channel: string; parallel: number; options?: PoolOptions }
  | { op: 'measure'; on: boolean }
  | { op: 'mark' }
  | { op: 'stats'; expected: number }
  | { op: 'close' };

export type FromWorker =
  { op: 'progress'; received: number } | { op: 'ok' } | { op: 'stats'; stats: SideStats } | { op: 'error'; message: string };
