/**
 * A scripted stand-in for a gateway on loopback, for the client's unit tests: WebSocket upgrades at
 * /v1/ws (accepted or refused), an SSE endpoint at /v1/sse, and whatever frames a test sends. The
 * real gateway is exercised in gateway.test.ts; this one makes timing and edge cases deterministic.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

export interface FakeConn {
  ws: WebSocket;
  url: URL;
  at: number;
  /** Frames received from the client, parsed. */
  received: Record<string, unknown>[];
  send(frame: unknown): void;
  close(code?: number, reason?: string): void;
}

export interface SseRequest {
  url: URL;
  at: number;
  res: ServerResponse;
  headers: IncomingMessage['headers'];
  send(frame: unknown, id?: string): void;
  comment(text?: string): void;
  end(): void;
}

/** Admission control as the gateway applies it under a reconnect storm: 503 + Retry-After + an error body. */
export interface Overload {
  /** How many more requests to refuse, WebSocket upgrades and SSE requests together. */
  remaining: number;
  /** The `Retry-After` header, in whole seconds; no header when unset. */
  retryAfterS?: number;
  /** The body's `detail.retry_after_ms`; no detail when unset. */
  retryAfterMs?: number;
  /** The body's error code (default `overloaded`). */
  code?: 'overloaded' | 'not_ready';
}

export class FakeGateway {
  readonly conns: FakeConn[] = [];
  readonly sse: SseRequest[] = [];
  /** Upgrade attempts, accepted or not. */
  readonly upgrades: { url: string; at: number }[] = [];
  /** Answer upgrades with this HTTP status instead of accepting them (a proxy that blocks WebSockets). */
  refuseUpgrades: number | null = null;
  /** While set and `remaining` > 0, WebSocket upgrades and SSE requests are refused with 503 + Retry-After. */
  overload: Overload | null = null;
  /** Requests refused by `overload`, in order. */
  readonly refused: { kind: 'websocket' | 'sse'; url: string; at: number }[] = [];
  /** Called for each accepted WebSocket; default: a welcome frame and answers to subscribe. */
  onConnection: (c: FakeConn) => void = (c) => this.welcome(c);
  /** Called for each SSE request; default: 404. */
  onSse: (r: SseRequest, req: IncomingMessage) => void = (r) => {
    r.res
      .writeHead(404, { 'content-type': 'application/json' })
      .end(JSON.stringify({ error: { code: 'not_found', message: 'no SSE here' } }));
  };
  /** Extra HTTP routes. */
  onHttp: ((req: IncomingMessage, res: ServerResponse) => boolean) | null = null;
  private readonly sockets = new Set<Socket>();
  private readonly wss = new WebSocketServer({ noServer: true });
  private server: Server;
  port = 0;
  welcomeExtra: Record<string, unknown> = {};

  constructor() {
    this.server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (this.onHttp?.(req, res)) return;
      if (url.pathname === '/v1/sse') {
        const refusal = this.takeOverload('sse', req.url ?? '');
        if (refusal) {
          res.writeHead(503, refusal.headers).end(refusal.body);
          return;
        }
        const r: SseRequest = {
          url,
          at: Date.now(),
          res,
          headers: req.headers,
          send: (frame, id) => res.write(`${id !== undefined ? `id: ${id}\n` : ''}data: ${JSON.stringify(frame)}\n\n`),
          comment: (text = 'hb') => res.write(`: ${text}\n\n`),
          end: () => res.end(),
        };
        this.sse.push(r);
        this.onSse(r, req);
        return;
      }
      res.writeHead(404).end();
    });
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    this.server.on('upgrade', (req, socket, head) => {
      this.upgrades.push({ url: req.url ?? '', at: Date.now() });
      const refusal = this.takeOverload('websocket', req.url ?? '');
      if (refusal) {
        const head = Object.entries(refusal.headers)
          .map(([k, v]) => `${k}: ${v}\r\n`)
          .join('');
        socket.end(`HTTP/1.1 503 Service Unavailable\r\n${head}connection: close\r\n\r\n${refusal.body}`);
        return;
      }
      if (this.refuseUpgrades !== null) {
        socket.end(`HTTP/1.1 ${this.refuseUpgrades} Refused\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        const c: FakeConn = {
          ws,
          url: new URL(req.url ?? '/', 'http://x'),
          at: Date.now(),
          received: [],
          send: (frame) => ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame)),
          close: (code = 1000, reason = '') => ws.close(code, reason),
        };
        ws.on('message', (d) => c.received.push(JSON.parse(d.toString()) as Record<string, unknown>));
        this.conns.push(c);
        this.onConnection(c);
      });
    });
  }

  static async start(): Promise<FakeGateway> {
    const g = new FakeGateway();
    await new Promise<void>((r) => g.server.listen(0, '127.0.0.1', r));
    g.port = (g.server.address() as { port: number }).port;
    return g;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Sends a welcome frame and answers subscribe/unsubscribe/ping like the gateway. */
  welcome(c: FakeConn, extra: Record<string, unknown> = {}): void {
    c.send({
      t: 'welcome',
      node: 'fake-1',
      region: 'test',
      heartbeat_s: 32,
      max_frame_bytes: 4096,
      user: null,
      credits: 'unlimited',
      ...this.welcomeExtra,
      ...extra,
    });
    c.ws.on('message', (d) => {
      const f = JSON.parse(d.toString()) as { op?: string; id?: unknown; channels?: string[] };
      if (f.op === 'subscribe') c.send({ t: 'subscribed', ...(f.id !== undefined ? { id: f.id } : {}), channels: f.channels });
      else if (f.op === 'unsubscribe') c.send({ t: 'unsubscribed', ...(f.id !== undefined ? { id: f.id } : {}), channels: f.channels });
      else if (f.op === 'ping') c.send({ t: 'pong', ...(f.id !== undefined ? { id: f.id } : {}) });
    });
  }

  /** The 503 answer for one request while `overload` lasts, or null to serve it. */
  private takeOverload(kind: 'websocket' | 'sse', url: string): { headers: Record<string, string>; body: string } | null {
    const o = this.overload;
    if (!o || o.remaining <= 0) return null;
    o.remaining--;
    this.refused.push({ kind, url, at: Date.now() });
    const code = o.code ?? 'overloaded';
    const body = JSON.stringify({
      error: {
        code,
        message: `refused by the fake gateway (${code})`,
        retriable: true,
        ...(o.retryAfterMs !== undefined ? { detail: { retry_after_ms: o.retryAfterMs } } : {}),
      },
    });
    const headers: Record<string, string> = { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) };
    if (o.retryAfterS !== undefined) headers['retry-after'] = String(o.retryAfterS);
    return { headers, body };
  }

  /** Frames of one op the client sent on connection `i`. */
  sent(i: number, op: string): Record<string, unknown>[] {
    return (this.conns[i]?.received ?? []).filter((f) => f.op === op);
  }

  /** Kills every open connection without a close frame (the network went away). */
  dropAll(): void {
    for (const c of this.conns) c.ws.terminate();
    for (const s of this.sockets) s.destroy();
  }

  async close(): Promise<void> {
    for (const c of this.conns) c.ws.terminate();
    for (const r of this.sse) r.res.destroy();
    for (const s of this.sockets) s.destroy();
    this.wss.close();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

export function msg(ch: string, offset: number, data: unknown = offset, epoch = '1', partition = 0): Record<string, unknown> {
  return { t: 'msg', ch, id: `e-${ch}-${offset}`, pos: `${epoch}:${partition}:${offset}`, ts: Date.now(), data };
}

export async function waitFor<T>(
  check: () => T | undefined | false | null | Promise<T | undefined | false | null>,
  what: string,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
