/**
 * The WebSocket transport (uWebSockets.js): upgrade, frames from the client, drain, close.
 *
 * Frames from clients are parsed and answered by the session (subscribe, unsubscribe, ping); a bad
 * frame gets an error frame and the connection stays. The delivery path writes through the Sink
 * below, which maps uWS' send results onto WriteResult.
 */
import type { HttpRequest, HttpResponse, TemplatedApp, us_socket_context_t, WebSocket } from 'uWebSockets.js';
import { CLOSE, errorFrame } from '@fanout/protocol';
import { retryAfterSeconds, type Gate } from './admission.js';
import type { Connection, ConnectionLimits } from '../delivery/connection.js';
import { WriteResult, type Sink } from '../delivery/sink.js';
import type { Session } from '../delivery/session.js';

interface UserData {
  conn?: Connection;
  remote: string;
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

export function attachWebSocket(app: TemplatedApp, opts: WebSocketTransportOptions): void {
  const { session } = opts;
  const decoder = new TextDecoder('utf-8', { fatal: true });
  app.ws<UserData>(opts.path, {
    compression: 0,
    maxPayloadLength: opts.maxPayloadBytes,
    idleTimeout: opts.idleTimeoutS,
    sendPingsAutomatically: true,
    // The delivery path stops writing at its own limit; this is only the hard ceiling above it.
    maxBackpressure: opts.limits.socketBufferBytes + opts.maxPayloadBytes + 1024 * 1024,
    closeOnBackpressureLimit: 0,

    upgrade: (res: HttpResponse, req: HttpRequest, context: us_socket_context_t) => {
      const err = opts.gate('connect');
      if (err) {
        // Browsers cannot read this; the SDK in Node and other clients honour Retry-After.
        res.cork(() => {
          res.writeStatus('503 Service Unavailable').writeHeader('content-type', 'application/json').writeHeader('retry-after', String(retryAfterSeconds(err))).end(JSON.stringify(err.toJSON()));
        });
        return;
      }
      const remote = Buffer.from(res.getRemoteAddressAsText()).toString();
      // Browsers cannot set headers on a WebSocket, so the token may come in the query string.
      const auth = req.getHeader('authorization');
      const query = new URLSearchParams(req.getQuery() ?? '');
      const token = query.get('token') ?? (auth.startsWith('Bearer ') ? auth.slice(7).trim() : null);
      res.upgrade<UserData>(
        { remote, token: token || null, credits: query.get('credits') },
        req.getHeader('sec-websocket-key'),
        req.getHeader('sec-websocket-protocol'),
        req.getHeader('sec-websocket-extensions'),
        context,
      );
    },

    open: (ws) => {
      const data = ws.getUserData();
      // Token failures are told over the socket (an error frame, then close 4501), because a
      // browser cannot read the body of a refused handshake.
      data.conn = session.connect(new UwsSink(ws), { transport: 'websocket', remote: data.remote }, { token: data.token, credits: data.credits });
    },

    message: (ws, message, isBinary) => {
      const conn = ws.getUserData().conn!;
      if (message.byteLength > opts.maxFrameBytes) {
        session.reject(conn, 'frame_too_large', `The frame is ${message.byteLength} bytes; the gateway accepts at most ${opts.maxFrameBytes}.`);
        return;
      }
      if (isBinary) {
        session.reject(conn, 'bad_frame', 'Binary frames are not accepted; send JSON text frames.');
        return;
      }
      let text: string;
      try {
        text = decoder.decode(message);
      } catch {
        session.reject(conn, 'bad_frame', 'The frame is not valid UTF-8.');
        return;
      }
      session.handle(conn, text);
    },

    drain: (ws) => {
      session.drained(ws.getUserData().conn!);
    },

    close: (ws, code) => {
      const conn = ws.getUserData().conn;
      if (conn) session.closed(conn, code);
    },
  });
}

export { errorFrame, CLOSE };
