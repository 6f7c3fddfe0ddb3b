/**
 * The two transports behind one small interface: a WebSocket (the browser's, or any class with the
 * same shape, such as the `ws` package's in Node), and Server-Sent Events read either with an
 * EventSource or, by default, with fetch and a streaming body parser (which sees HTTP statuses, error
 * bodies and heartbeat comments, and works in Node 20 without a package).
 *
 * A transport reports: opened (the handshake succeeded), each frame as text (SSE: with the event id),
 * any sign of life, and one close with the code, whether it had opened, and for refusals it can see
 * (SSE with fetch; WebSocket with the `ws` package) the HTTP status, the gateway's error body and the
 * wait a 503 + Retry-After asked for. A browser's WebSocket and an EventSource hide all three.
 */
import { serverRetryAfterMs } from './retry-after.js';

export type TransportKind = 'websocket' | 'sse';

/** What the SDK needs of a WebSocket: the browser's WebSocket and the `ws` package both fit. */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((ev: any) => void) | null;
  onmessage: ((ev: any) => void) | null;
  onclose: ((ev: any) => void) | null;
  onerror: ((ev: any) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  /**
   * Node event emitters only (the `ws` package): the transport listens to `'unexpected-response'`
   * to read a refused handshake's status, Retry-After and body. Browsers' WebSocket has no `on`.
   */
  on?(event: string, listener: (...args: any[]) => void): unknown;
}
export type WebSocketCtor = new (url: string) => WebSocketLike;

/** What the SDK needs of an EventSource (the browser's, or a compatible class). */
export interface EventSourceLike {
  readonly readyState: number;
  onopen: ((ev: any) => void) | null;
  onmessage: ((ev: any) => void) | null;
  onerror: ((ev: any) => void) | null;
  addEventListener(type: string, listener: (ev: any) => void): void;
  close(): void;
}
export type EventSourceCtor = new (url: string) => EventSourceLike;

export type FetchLike = (
  input: string,
  init?: { method?: string; headers?: Record<string, string>; signal?: AbortSignal; cache?: string },
) => Promise<{
  ok: boolean;
  status: number;
  headers: { get(name: string): string | null };
  body: ReadableStream<Uint8Array> | null;
  text(): Promise<string>;
  json(): Promise<unknown>;
}>;

export interface TransportClose {
  code: number;
  reason: string;
  /** Whether the handshake had succeeded (WebSocket open, SSE 200 with text/event-stream). */
  opened: boolean;
  /** The HTTP status of a refused handshake (SSE with fetch; WebSocket with the `ws` package). */
  httpStatus?: number;
  /** The gateway's `{"error": {code, message}}` body of a refused handshake, when it could be read. */
  error?: { code: string; message: string };
  /**
   * A 503 (or 429) refusal asked to wait this long before the next attempt, in ms: the body's
   * `detail.retry_after_ms`, else the `Retry-After` header. Before the client's jitter and cap.
   */
  retryAfterMs?: number;
}

export interface TransportHandlers {
  open(): void;
  frame(text: string, eventId: string | undefined): void;
  /** Anything arrived (a frame, an SSE comment): the connection is alive. */
  activity(): void;
  close(info: TransportClose): void;
}

export interface Transport {
  readonly kind: TransportKind;
  /** Whether frames can be sent to the gateway (WebSocket only). */
  readonly canSend: boolean;
  /** Whether the transport sees heartbeats, so that silence means a dead connection. */
  readonly seesHeartbeats: boolean;
  send(text: string): boolean;
  /** Closes without reporting a close to the handlers. */
  close(code?: number, reason?: string): void;
}

/** Code used for connections that failed or died without a close frame (as browsers report them). */
export const ABNORMAL_CLOSURE = 1006;

const noop = () => undefined;
const OPEN = 1;

function toText(data: unknown): string | null {
  if (typeof data === 'string') return data;
  if (data instanceof ArrayBuffer) return new TextDecoder().decode(data);
  if (ArrayBuffer.isView(data)) return new TextDecoder().decode(data as ArrayBufferView);
  return null;
}

export class WebSocketTransport implements Transport {
  readonly kind = 'websocket' as const;
  readonly seesHeartbeats = true;
  private ws: WebSocketLike | null = null;
  private done = false;
  private opened = false;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    Ctor: WebSocketCtor,
    url: string,
    private readonly h: TransportHandlers,
    connectTimeoutMs: number,
  ) {
    let ws: WebSocketLike;
    try {
      ws = new Ctor(url);
    } catch (err) {
      // A bad URL or a blocked scheme: reported like any failed open, on a later turn.
      setTimeout(() => this.finish({ code: ABNORMAL_CLOSURE, reason: `cannot open: ${(err as Error).message}`, opened: false }), 0);
      return;
    }
    this.ws = ws;
    this.timer = setTimeout(() => {
      if (!this.opened) {
        this.close();
        this.finish({ code: ABNORMAL_CLOSURE, reason: `no handshake within ${connectTimeoutMs} ms`, opened: false }, true);
      }
    }, connectTimeoutMs);
    ws.onopen = () => {
      if (this.done) return;
      this.opened = true;
      this.clearTimer();
      h.open();
    };
    ws.onmessage = (ev: { data?: unknown }) => {
      if (this.done) return;
      h.activity();
      const text = toText(ev?.data);
      if (text !== null) h.frame(text, undefined);
    };
    // Always keep an error listener: the `ws` package throws an 'error' nobody listens to.
    ws.onerror = noop;
    // The `ws` package shows a refused handshake (a browser only reports a close 1006). With a
    // listener, `ws` leaves the request to us: read what the gateway said, then abort it.
    if (typeof ws.on === 'function') ws.on('unexpected-response', (_req: unknown, res: RefusedResponse) => this.refused(res));
    ws.onclose = (ev: { code?: number; reason?: unknown }) => {
      this.finish({
        code: typeof ev?.code === 'number' ? ev.code : ABNORMAL_CLOSURE,
        reason: typeof ev?.reason === 'string' ? ev.reason : String(ev?.reason ?? ''),
        opened: this.opened,
      });
    };
  }

  get canSend(): boolean {
    return !this.done && this.ws !== null && this.ws.readyState === OPEN;
  }

  send(text: string): boolean {
    if (!this.canSend) return false;
    try {
      this.ws!.send(text);
      return true;
    } catch {
      return false;
    }
  }

  close(code = 1000, reason = ''): void {
    const ws = this.ws;
    this.done = true;
    this.clearTimer();
    if (!ws) return;
    ws.onopen = ws.onmessage = ws.onclose = noop;
    ws.onerror = noop;
    try {
      ws.close(code, reason);
    } catch {
      // closing or closed already
    }
  }

  private clearTimer(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  /** The handshake was answered with something other than 101: report it as a failed open. */
  private refused(res: RefusedResponse): void {
    if (this.done) return;
    const status = typeof res?.statusCode === 'number' ? res.statusCode : 0;
    const header = res?.headers?.['retry-after'];
    void readSmallBody(res).then((text) => {
      if (this.done) return;
      let body: unknown;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        // not JSON (a proxy's page)
      }
      const error = errorOf(body);
      const retryAfterMs = serverRetryAfterMs(status, header, body);
      // close() aborts the request and its socket (`ws` in CONNECTING); the close it causes is not reported.
      this.close();
      this.finish(
        {
          code: ABNORMAL_CLOSURE,
          reason: `HTTP ${status}${error ? ` ${error.code}` : ''}`,
          opened: false,
          httpStatus: status,
          ...(error ? { error } : {}),
          ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
        },
        true,
      );
    });
  }

  private finish(info: TransportClose, force = false): void {
    if (this.done && !force) return;
    this.done = true;
    this.clearTimer();
    this.h.close(info);
  }
}

/** The part of Node's IncomingMessage that a refused `ws` handshake is read through. */
interface RefusedResponse {
  statusCode?: number;
  headers?: Record<string, string | string[] | undefined>;
  on(event: string, listener: (...args: any[]) => void): unknown;
  setEncoding?(enc: string): unknown;
}

/** Most of a refused handshake's body that is read: the gateway's error bodies are a few hundred bytes. */
const MAX_REFUSAL_BODY = 16 * 1024;
/** How long a refused handshake's body may take to arrive before the refusal is reported without it, in ms. */
const REFUSAL_BODY_WAIT_MS = 1000;

/** Up to MAX_REFUSAL_BODY characters of a response body; whatever arrived when it ends, fails, or is slow. */
function readSmallBody(res: RefusedResponse): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    let settled = false;
    const done = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(text);
    };
    const timer = setTimeout(done, REFUSAL_BODY_WAIT_MS);
    try {
      res.setEncoding?.('utf8');
      res.on('data', (chunk: unknown) => {
        text += typeof chunk === 'string' ? chunk : String(chunk);
        if (text.length >= MAX_REFUSAL_BODY) done();
      });
      res.on('end', done);
      res.on('close', done);
      res.on('error', done); // also keeps an aborted response from throwing
    } catch {
      done();
    }
  });
}

/** The `{code, message}` of a gateway error body, if it is one. */
function errorOf(body: unknown): { code: string; message: string } | undefined {
  const e = (body as { error?: { code?: unknown; message?: unknown } } | null | undefined)?.error;
  return e && typeof e.code === 'string' ? { code: e.code, message: String(e.message ?? '') } : undefined;
}

/** SSE through an EventSource. It cannot see statuses or comments; the client manages reconnects. */
export class EventSourceTransport implements Transport {
  readonly kind = 'sse' as const;
  readonly canSend = false;
  readonly seesHeartbeats = false;
  private es: EventSourceLike | null = null;
  private done = false;
  private opened = false;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    Ctor: EventSourceCtor,
    url: string,
    private readonly h: TransportHandlers,
    connectTimeoutMs: number,
  ) {
    let es: EventSourceLike;
    try {
      es = new Ctor(url);
    } catch (err) {
      setTimeout(() => this.finish({ code: ABNORMAL_CLOSURE, reason: `cannot open: ${(err as Error).message}`, opened: false }), 0);
      return;
    }
    this.es = es;
    this.timer = setTimeout(() => {
      if (!this.opened) {
        this.close();
        this.finish({ code: ABNORMAL_CLOSURE, reason: `no stream within ${connectTimeoutMs} ms`, opened: false }, true);
      }
    }, connectTimeoutMs);
    es.onopen = () => {
      if (this.done) return;
      this.opened = true;
      if (this.timer !== null) clearTimeout(this.timer);
      h.open();
    };
    const onData = (ev: { data?: unknown; lastEventId?: string }) => {
      if (this.done || typeof ev?.data !== 'string') return false;
      h.activity();
      h.frame(ev.data, ev.lastEventId || undefined);
      return true;
    };
    es.onmessage = onData;
    es.onerror = (ev: { data?: unknown }) => {
      // An event named "error" carrying data is a frame, not a failure.
      if (onData(ev as { data?: unknown })) return;
      // The browser would retry on its own after `retry:`; the client's backoff decides instead.
      this.close();
      this.finish(
        { code: ABNORMAL_CLOSURE, reason: this.opened ? 'stream lost' : 'stream refused or unreachable', opened: this.opened },
        true,
      );
    };
  }

  send(): boolean {
    return false;
  }

  close(): void {
    this.done = true;
    if (this.timer !== null) clearTimeout(this.timer);
    const es = this.es;
    if (!es) return;
    es.onopen = es.onmessage = es.onerror = noop;
    try {
      es.close();
    } catch {
      // already closed
    }
  }

  private finish(info: TransportClose, force = false): void {
    if (this.done && !force) return;
    this.done = true;
    this.h.close(info);
  }
}

/** Largest SSE line kept while parsing (a frame is bounded by the gateway; this bounds a broken one). */
const MAX_SSE_BUFFER = 4 * 1024 * 1024;

/** SSE read with fetch and a streaming text/event-stream parser. */
export class FetchSseTransport implements Transport {
  readonly kind = 'sse' as const;
  readonly canSend = false;
  readonly seesHeartbeats = true;
  private readonly abort = new AbortController();
  private done = false;
  private opened = false;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    fetchFn: FetchLike,
    url: string,
    private readonly h: TransportHandlers,
    connectTimeoutMs: number,
  ) {
    this.timer = setTimeout(() => {
      if (!this.opened) {
        this.close();
        this.finish({ code: ABNORMAL_CLOSURE, reason: `no stream within ${connectTimeoutMs} ms`, opened: false }, true);
      }
    }, connectTimeoutMs);
    void this.run(fetchFn, url).catch((err: unknown) => {
      this.finish({
        code: ABNORMAL_CLOSURE,
        reason: this.opened ? 'stream lost' : `cannot open: ${(err as Error)?.message ?? String(err)}`,
        opened: this.opened,
      });
    });
  }

  send(): boolean {
    return false;
  }

  close(): void {
    this.done = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.abort.abort();
  }

  private async run(fetchFn: FetchLike, url: string): Promise<void> {
    const res = await fetchFn(url, { headers: { accept: 'text/event-stream' }, signal: this.abort.signal, cache: 'no-store' });
    if (this.done) return;
    const type = res.headers.get('content-type') ?? '';
    if (!res.ok || !type.startsWith('text/event-stream') || !res.body) {
      let body: unknown;
      try {
        body = await res.json();
      } catch {
        // not JSON
      }
      if (this.done) return;
      const error = errorOf(body);
      // Cross-origin, a browser shows Retry-After only if the gateway exposes it; the body is readable.
      const retryAfterMs = serverRetryAfterMs(res.status, res.headers.get('retry-after'), body);
      this.abort.abort();
      this.finish({
        code: ABNORMAL_CLOSURE,
        reason: `HTTP ${res.status}${error ? ` ${error.code}` : ''}`,
        opened: false,
        httpStatus: res.status,
        ...(error ? { error } : {}),
        ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
      });
      return;
    }
    this.opened = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.h.open();
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    let data: string[] = [];
    let eventId: string | undefined;
    let sawId = false;
    for (;;) {
      const { value, done } = await reader.read();
      if (this.done) return;
      if (done) break;
      this.h.activity();
      buf += decoder.decode(value, { stream: true });
      // Lines end with \n, \r\n or \r; keep an incomplete last line (and a trailing \r, which may
      // be the first half of \r\n) for the next chunk.
      let start = 0;
      for (;;) {
        let nl = -1;
        for (let i = start; i < buf.length; i++) {
          const c = buf.charCodeAt(i);
          if (c === 10 || c === 13) {
            nl = i;
            break;
          }
        }
        if (nl < 0) break;
        if (buf.charCodeAt(nl) === 13 && nl + 1 === buf.length) break; // maybe \r\n split over chunks
        const line = buf.slice(start, nl);
        start = nl + (buf.charCodeAt(nl) === 13 && buf.charCodeAt(nl + 1) === 10 ? 2 : 1);
        if (line === '') {
          if (data.length > 0) {
            const text = data.join('\n');
            data = [];
            this.h.frame(text, sawId ? eventId : undefined);
            if (this.done) return;
          }
          continue;
        }
        if (line.charCodeAt(0) === 58) continue; // ":" comment (heartbeat)
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let val = colon < 0 ? '' : line.slice(colon + 1);
        if (val.charCodeAt(0) === 32) val = val.slice(1);
        if (field === 'data') data.push(val);
        else if (field === 'id' && !val.includes('\0')) {
          eventId = val;
          sawId = true;
        }
        // "event" and "retry" are not used: every frame says what it is in "t".
      }
      buf = buf.slice(start);
      if (buf.length > MAX_SSE_BUFFER) throw new Error('SSE line too long');
    }
    this.finish({ code: ABNORMAL_CLOSURE, reason: 'stream ended', opened: true });
  }

  private finish(info: TransportClose, force = false): void {
    if (this.done && !force) return;
    this.done = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.h.close(info);
  }
}
