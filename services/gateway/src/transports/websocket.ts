/**
 * The WebSocket transport (uWebSockets.js): upgrade, frames from the client, drain, close.
 *
 * Frames from clients are parsed and answered by the session (subscribe, unsubscribe, ping); a bad
 * frame gets an error frame and the connection stays. The delivery path writes through the Sink
 * below, which maps uWS' send results onto WriteResult.
 *
 * Hostile frames (RFC 6455 7.4.1), by size of the message:
 * - up to maxFrameBytes: answered normally (json_too_deep, bad_frame... as error frames);
 * - up to maxPayloadBytes: an error frame frame_too_large, the connection stays;
 * - up to uwsMaxPayloadLength() (below): the gateway ends the connection with close 1009;
 * - beyond that uWS drops the socket itself, without a close frame (1006).
 * A binary message is ended with close 1003 (unsupported data: the protocol has text frames only).
 * uWS itself validates text messages as UTF-8 and the frame header (reserved bits, opcodes) before
 * the gateway sees anything, and it fails those connections without a close frame (1006, not
 * 1007/1002): uWS' force-close path has no close frame (uNetworking/uWebSockets#1025); the UTF-8
 * check below only guards against that changing.
 */
import type { HttpRequest, HttpResponse, TemplatedApp, us_socket_context_t, WebSocket } from 'uWebSockets.js';
import { CLOSE, CLOSE_RFC, errorFrame, jsonTooDeep, MAX_JSON_DEPTH } from '@fanout/protocol';
import { statusLine } from '@fanout/observability';
import { retryAfterSeconds, type Gate } from './admission.js';
import type { Connection, ConnectionLimits } from '../delivery/connection.js';
import { WriteResult, type Sink } from '../delivery/sink.js';
import type { Session } from '../delivery/session.js';

interface UserData {
  conn?: Connection;
  remote: string;
  /** The client address its per-address limits count against (the socket's, or the trusted proxy header's). */
  address: string;
  /** The connect token, verified once the socket is open. */
  token: string | null;
  /** `?credits=` as given. */
  credits: string | null;
}

export interface WebSocketTransportOptions {
  path: string;
  idleTimeoutS: number;
  maxPayloadBytes: number;
  maxFrameBytes: number;
  limits: ConnectionLimits;
  /** Starting, draining or over the admission rate: upgrades are refused with this 503 and Retry-After. */
  gate: Gate;
  session: Session;
}

class UwsSink implements Sink {
  constructor(private readonly ws: WebSocket<UserData>) {}

  cork(fn: () => void): void {
    this.ws.cork(fn);
  }

  write(frame: Buffer): WriteResult {
    // uWS: 1 = sent, 0 = sent but backpressure built up, 2 = dropped (over maxBackpressure).
    const r = this.ws.send(frame, false, false);
    return r === 1 ? WriteResult.Ok : r === 0 ? WriteResult.Backpressure : WriteResult.Dropped;
  }

  bufferedAmount(): number {
    return this.ws.getBufferedAmount();
  }

  close(code: number, reason: string): void {
    this.ws.end(code, reason);
  }
}

/**
 * uWS' maxPayloadLength: the largest message uWS buffers and hands to the gateway. It is set above
 * the gateway's own limit (maxPayloadBytes) so that an over-size message reaches the gateway, which
 * ends the connection with a close frame 1009 instead of uWS dropping it silently (1006). It is
 * bounded because uWS buffers a whole message per connection before handing it over: 16 times the
 * gateway's limit, at least 1 MiB (the defaults: 1 MiB, so a 1 MB frame still gets its 1009), keeps
 * the worst case per connection at about 1 MiB for the defaults, which the admission rate and the
 * idle timeout keep from multiplying fast. Messages beyond it are dropped by uWS (1006).
 */
export function uwsMaxPayloadLength(maxPayloadBytes: number): number {
  return Math.max(16 * maxPayloadBytes, 1024 * 1024);
}

/** uWS' idle timeout for a heartbeat of `heartbeatS` (0: off): 1.5 x, in uWS' 4-second steps. */
export function uwsIdleTimeoutS(heartbeatS: number): number {
  return heartbeatS === 0 ? 0 : Math.ceil((heartbeatS * 1.5) / 4) * 4;
}

export function attachWebSocket(app: TemplatedApp, opts: WebSocketTransportOptions): void {
  const { session } = opts;
  const decoder = new TextDecoder('utf-8', { fatal: true });
  app.ws<UserData>(opts.path, {
    compression: 0,
    maxPayloadLength: uwsMaxPayloadLength(opts.maxPayloadBytes),
    // uWS pings a silent client at half its idle timeout; the SDK pings at half of heartbeat_s
    // (welcome). With uWS at 1.5 x heartbeat_s, an SDK client's own ping always comes first and
    // uWS never pings it: one round trip per interval instead of two (measured by
    // bench:connections: the heartbeats were half the idle CPU). A client that says nothing is
    // pinged at ~0.75 x and dropped at 1.5 x heartbeat_s.
    idleTimeout: uwsIdleTimeoutS(opts.idleTimeoutS),
    sendPingsAutomatically: true,
    // The delivery path stops writing at its own limit; this is only the hard ceiling above it.
    maxBackpressure: opts.limits.socketBufferBytes + opts.maxPayloadBytes + 1024 * 1024,
    // closeOnBackpressureLimit left at its default (off): uWS 20.30 types it as a number, 20.57 as a boolean.

    upgrade: (res: HttpResponse, req: HttpRequest, context: us_socket_context_t) => {
      const address = opts.gate.address(res, req);
      const err = opts.gate.check('connect', address);
      if (err) {
        // Browsers cannot read this; the SDK in Node and other clients honour Retry-After.
        res.cork(() => {
          res
            .writeStatus(statusLine(err.status))
            .writeHeader('content-type', 'application/json')
            .writeHeader('retry-after', String(retryAfterSeconds(err)))
            .end(JSON.stringify(err.toJSON()));
        });
        return;
      }
      const remote = Buffer.from(res.getRemoteAddressAsText()).toString();
      // Browsers cannot set headers on a WebSocket, so the token may come in the query string.
      const auth = req.getHeader('authorization');
      const query = new URLSearchParams(req.getQuery() ?? '');
      const token = query.get('token') ?? (auth.startsWith('Bearer ') ? auth.slice(7).trim() : null);
      res.upgrade<UserData>(
        { remote, address, token: token || null, credits: query.get('credits') },
        req.getHeader('sec-websocket-key'),
        req.getHeader('sec-websocket-protocol'),
        req.getHeader('sec-websocket-extensions'),
        context,
      );
    },

    open: (ws) => {
      const data = ws.getUserData();
      opts.gate.hold(data.address);
      // Token failures are told over the socket (an error frame, then close 4501), because a
      // browser cannot read the body of a refused handshake.
      data.conn = session.connect(
        new UwsSink(ws),
        { transport: 'websocket', remote: data.remote },
        { token: data.token, credits: data.credits },
      );
    },

    message: (ws, message, isBinary) => {
      const conn = ws.getUserData().conn!;
      if (message.byteLength > opts.maxPayloadBytes) {
        // RFC 6455 7.4.1: 1009, message too big. The reason is at most 123 bytes.
        ws.end(CLOSE_RFC.MESSAGE_TOO_BIG.code, `message too big: over ${opts.maxPayloadBytes} bytes`);
        return;
      }
      if (message.byteLength > opts.maxFrameBytes) {
        session.reject(
          conn,
          'frame_too_large',
          `The frame is ${message.byteLength} bytes; the gateway accepts at most ${opts.maxFrameBytes}.`,
        );
        return;
      }
      if (isBinary) {
        // RFC 6455 7.4.1: 1003, a type of data the endpoint cannot accept (text only).
        ws.end(CLOSE_RFC.UNSUPPORTED_DATA.code, CLOSE_RFC.UNSUPPORTED_DATA.reason);
        return;
      }
      let text: string;
      try {
        text = decoder.decode(message);
      } catch {
        // RFC 6455 8.1 and 7.4.1: 1007. uWS refuses invalid UTF-8 before this (see the top).
        ws.end(CLOSE_RFC.INVALID_PAYLOAD.code, CLOSE_RFC.INVALID_PAYLOAD.reason);
        return;
      }
      // Before any parsing: a deep frame costs one linear scan and no stack.
      if (jsonTooDeep(text)) {
        session.reject(
          conn,
          'json_too_deep',
          `The frame nests arrays and objects more than ${MAX_JSON_DEPTH} levels deep; frames are flat JSON objects.`,
        );
        return;
      }
      session.handle(conn, text);
    },

    drain: (ws) => {
      session.drained(ws.getUserData().conn!);
    },

    close: (ws, code) => {
      opts.gate.release(ws.getUserData().address);
      const conn = ws.getUserData().conn;
      if (conn) session.closed(conn, code);
    },
  });
}

export { errorFrame, CLOSE };
