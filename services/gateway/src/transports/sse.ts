/**
 * Server-Sent Events: `GET /v1/sse?channels=<ch>,<ch>[&token=...][&cursor=...]`.
 *
 * Each event's `data` is the same JSON frame as over WebSocket (welcome, msg, gap, reset,
 * reconnect, error, close); message events carry `id:` = a cursor: the position itself for a
 * one-channel stream, or `m.<base64url JSON {channel: position}>` for several. The browser's
 * EventSource sends it back as `Last-Event-ID` when it reconnects, and the stream resumes after it
 * (as `?cursor=` does). A comment line every ~25 s keeps proxies from closing an idle stream.
 * SSE has no credits: the connection is unlimited, bounded by its queue and the namespace policy,
 * and TCP backpressure (uWS' write result and onWritable) stops writes the same way.
 */
import type { HttpResponse, TemplatedApp } from 'uWebSockets.js';
import {
  closeFrame,
  ERRORS,
  FanoutError,
  isValidChannel,
  MAX_CHANNELS_PER_FRAME,
  parseNamespacePattern,
  parsePosition,
} from '@fanout/protocol';
import type { Session } from '../delivery/session.js';
import type { Connection } from '../delivery/connection.js';
import { WriteResult, type Sink } from '../delivery/sink.js';
import type { Outgoing } from '../delivery/outgoing.js';
import { authorize, paramError, readRequest, Reply, type PullDeps, queryParam } from './http-common.js';

const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;

/** Encodes the positions a stream has reached as one cursor (the SSE event id). */
export function encodeCursor(positions: Map<string, string>, channels: string[]): string {
  if (channels.length === 1 && parseNamespacePattern(channels[0]!) === null) return positions.get(channels[0]!) ?? '';
  return 'm.' + Buffer.from(JSON.stringify(Object.fromEntries(positions))).toString('base64url');
}

/** Reads a cursor back into positions for the stream's exact channels; throws invalid_position. */
export function decodeCursor(cursor: string, channels: string[]): Record<string, string> {
  const exact = channels.filter((c) => parseNamespacePattern(c) === null);
  let map: Record<string, unknown>;
  if (cursor.startsWith('m.')) {
    if (cursor.length > 64 * 1024) throw paramError('invalid_position', 'The cursor is too long.');
    try {
      map = JSON.parse(Buffer.from(cursor.slice(2), 'base64url').toString()) as Record<string, unknown>;
    } catch {
      throw paramError('invalid_position', 'The cursor is not one this gateway issued.');
    }
    if (typeof map !== 'object' || map === null || Array.isArray(map))
      throw paramError('invalid_position', 'The cursor is not one this gateway issued.');
  } else {
    if (exact.length !== 1) throw paramError('invalid_position', 'A single-position cursor fits a stream of one channel.');
    map = { [exact[0]!]: cursor };
  }
  const out: Record<string, string> = {};
  for (const [ch, p] of Object.entries(map)) {
    if (!exact.includes(ch)) continue; // wildcard streams resume only their exact channels
    if (typeof p !== 'string' || parsePosition(p) === null)
      throw paramError('invalid_position', `The cursor's position for ${ch.slice(0, 80)} is not a position.`);
    out[ch] = p;
  }
  return out;
}

class SseSink implements Sink {
  private backpressured = false;
  ended = false;
  /** Called once the server ended the stream (the connection is then removed from the hub). */
  onEnd: ((code: number) => void) | null = null;
  readonly positions = new Map<string, string>();

  constructor(
    private readonly res: HttpResponse,
    private readonly channels: string[],
    initial: Record<string, string>,
  ) {
    for (const [ch, p] of Object.entries(initial)) this.positions.set(ch, p);
  }

  cork(fn: () => void): void {
    if (this.ended) return;
    this.res.cork(fn);
  }

  write(frame: Buffer, item?: Outgoing): WriteResult {
    if (this.ended) return WriteResult.Dropped;
    let ok = true;
    if (item) {
      this.positions.set(item.channel, item.position);
      ok = this.res.write(`id: ${encodeCursor(this.positions, this.channels)}\n`) && ok;
    }
    if (frame.indexOf(NEWLINE) < 0 && frame.indexOf(CARRIAGE_RETURN) < 0) {
      ok = this.res.write('data: ') && ok;
      ok = this.res.write(frame) && ok;
      ok = this.res.write('\n\n') && ok;
    } else {
      // Multi-line data (JSON pretty-printed by a foreign producer) becomes several data: lines,
      // which the client joins with newlines: the frame arrives unchanged.
      ok =
        this.res.write(
          frame
            .toString()
            .split(/\r\n|\r|\n/)
            .map((l) => `data: ${l}\n`)
            .join('') + '\n',
        ) && ok;
    }
    if (!ok) this.backpressured = true;
    return ok ? WriteResult.Ok : WriteResult.Backpressure;
  }

  heartbeat(): void {
    if (this.ended || this.backpressured) return;
    this.res.cork(() => {
      if (!this.res.write(': hb\n\n')) this.backpressured = true;
    });
  }

  writable(): void {
    this.backpressured = false;
  }

  bufferedAmount(): number {
    return this.backpressured ? Number.MAX_SAFE_INTEGER : 0;
  }

  close(code: number, reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.res.cork(() => {
      this.res.write(`data: ${closeFrame(code, reason)}\n\n`);
      this.res.end();
    });
    this.onEnd?.(code);
  }
}

export interface SseOptions extends PullDeps {
  session: Session;
  heartbeatMs: number;
}

export function attachSse(app: TemplatedApp, o: SseOptions): { stop(): void } {
  const streams = new Set<SseSink>();
  const timer = setInterval(() => {
    for (const s of streams) s.heartbeat();
  }, o.heartbeatMs);
  timer.unref();

  app.get('/v1/sse', (res, req) => {
    const info = readRequest(req);
    const address = o.gate.address(res, req);
    const reply = new Reply(res);
    void (async () => {
      const refused = o.gate.check('connect', address);
      if (refused) throw refused;
      const channels = [
        ...new Set(
          (queryParam(info.query, 'channels') ?? '')
            .split(',')
            .map((c) => c.trim())
            .filter(Boolean),
        ),
      ];
      if (channels.length === 0 || channels.length > MAX_CHANNELS_PER_FRAME) {
        throw paramError('invalid_parameter', `"channels" must name 1 to ${MAX_CHANNELS_PER_FRAME} comma-separated channels.`);
      }
      for (const c of channels) {
        if (!isValidChannel(c) && parseNamespacePattern(c) === null)
          throw paramError(
            'invalid_channel',
            `${JSON.stringify(String(c).slice(0, 80))} is not a channel. ${ERRORS.invalid_channel.message}`,
          );
      }
      const cursor = info.lastEventId || queryParam(info.query, 'cursor') || '';
      const positions = cursor ? decodeCursor(cursor, channels) : {};
      const principal = await authorize(o, info.token, channels);
      // A user channel this gateway does not own would leave an idle stream: refuse it up front.
      for (const c of channels) {
        if (parseNamespacePattern(c) === null && o.streams.for(c) === o.streams.users && !o.streams.users.owns(o.streams.partitionOf(c))) {
          throw new FanoutError('wrong_gateway', o.ownerHint(c));
        }
      }
      if (reply.aborted) return;
      reply.done = true;
      const sink = new SseSink(res, channels, positions);
      let conn: Connection | null = null;
      res.cork(() => {
        res
          .writeStatus('200 OK')
          .writeHeader('content-type', 'text/event-stream; charset=utf-8')
          .writeHeader('cache-control', 'no-cache')
          .writeHeader('x-accel-buffering', 'no')
          .writeHeader('access-control-allow-origin', '*');
        // Tells EventSource how long to wait before it reconnects on its own (ms).
        res.write('retry: 2000\n\n');
      });
      res.onWritable(() => {
        sink.writable();
        if (conn) o.session.drained(conn);
        return true;
      });
      // The stream counts against its address's open connections until it ends, either way.
      o.gate.hold(address);
      let released = false;
      const release = () => {
        if (!released) o.gate.release(address);
        released = true;
      };
      reply.whenAborted(() => {
        sink.ended = true;
        streams.delete(sink);
        release();
        if (conn) o.session.closed(conn, 1006);
      });
      streams.add(sink);
      sink.onEnd = (code) => {
        streams.delete(sink);
        release();
        if (conn) o.session.closed(conn, code);
      };
      const subscribe = JSON.stringify({ op: 'subscribe', channels, ...(Object.keys(positions).length ? { positions } : {}) });
      conn = o.session.connect(
        sink,
        { transport: 'sse' },
        { token: null, principal, credits: null, forceUnlimited: true, afterWelcome: (c) => o.session.handle(c, subscribe) },
      );
    })().catch((err: unknown) => reply.error(err));
  });

  return {
    stop: () => clearInterval(timer),
  };
}
