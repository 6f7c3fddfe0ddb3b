/**
 * FanoutClient: one logical connection to a fan-out gateway that survives the real world.
 *
 * - WebSocket to `<url>/v1/ws?token=..&credits=..`; Server-Sent Events (`<url>/v1/sse?channels=..`)
 *   when WebSockets are unavailable or fail to open `wsFailuresBeforeSse` times in a row.
 * - Reconnects with exponential backoff and full jitter (see backoff.ts for the bounds), waits
 *   exactly as long as a `reconnect` frame asks, at least as long as a 503 + Retry-After refusal
 *   asks (plus up to 10% jitter; retry-after.ts), and never reconnects after close codes 4500-4999.
 * - Remembers the last position per channel, resubscribes with them (the gateway replays what was
 *   missed) and drops messages it has already delivered, so the app sees each message once.
 * - Credits: `'auto'` grants as the app consumes; a number leaves granting to the app (`grant`).
 * - With `routerUrl`, asks the router which gateway owns the user before connecting, and again
 *   after `wrong_gateway`, a rebalance, or a node that cannot be reached.
 *
 * This file holds the client's state and its reactions. The public types are in types.ts; frames
 * are read in incoming.ts and written in outgoing.ts; what follows a lost connection is decided by
 * reconnect-decision.ts (a pure function), the wait by backoff.ts and retry-after.ts.
 */
import { Backoff } from './backoff.js';
import { TypedEmitter } from './emitter.js';
import { readFrame, type IncomingFrame } from './incoming.js';
import { creditFrame, PING_FRAME, subscribeFrames, unsubscribeFrames } from './outgoing.js';
import { cursorFromPositions, isValidPosition, PositionTracker } from './positions.js';
import { CLOSE_CODES, DEFAULT_MAX_FRAME_BYTES, isPattern, isSubscribable, MAX_CREDIT_GRANT, namespaceOf } from './protocol.js';
import { decideAfterLoss, MAX_SERVER_DELAY_MS } from './reconnect-decision.js';
import { retryAfterDelay } from './retry-after.js';
import { lookupRoute, RouterError, tokenSubject, type Route } from './router.js';
import {
  ABNORMAL_CLOSURE,
  EventSourceTransport,
  FetchSseTransport,
  WebSocketTransport,
  type EventSourceCtor,
  type FetchLike,
  type Transport,
  type TransportClose,
  type TransportKind,
  type WebSocketCtor,
} from './transports.js';
import {
  FanoutClientError,
  type ClientStats,
  type ConnectionState,
  type CreditsOption,
  type FanoutClientEvents,
  type FanoutClientOptions,
  type StateEvent,
  type WelcomeEvent,
} from './types.js';

interface Waiter {
  remaining: Set<string>;
  resolve(): void;
  reject(err: Error): void;
}

interface SentRequest {
  op: 'subscribe' | 'unsubscribe';
  channels: string[];
  withPositions: string[];
}

/** One transport connection (one attempt). */
interface Conn {
  kind: TransportKind;
  transport: Transport;
  opened: boolean;
  welcomed: boolean;
  openedAt: number;
  lastFrameAt: number;
  heartbeatMs: number;
  maxFrameBytes: number;
  /** Channels the gateway confirmed on this connection. */
  active: Set<string>;
  /** Channels sent in a subscribe frame not yet answered. */
  inflight: Set<string>;
  requests: Map<number, SentRequest>;
  /** SSE: the sorted channel list this stream was opened with. */
  channelsKey: string;
  /** SSE: the channels sent with a cursor. */
  resumed: string[];
  /** Credits used since the last grant (auto mode). */
  used: number;
  autoCredits: boolean;
  /** A token_* error frame, reported with the 4501 close that follows it. */
  authError: { code: string; message: string } | null;
}

const DEFAULT_HEARTBEAT_MS = 30_000;
const noop = () => undefined;

/** A frame of one type, as readFrame gives it. */
type Frame<T extends IncomingFrame['t']> = Extract<IncomingFrame, { t: T }>;

export class FanoutClient extends TypedEmitter<FanoutClientEvents> {
  private readonly wsBase: string | null;
  private readonly httpBase: string | null;
  private readonly transports: TransportKind[];
  private readonly WebSocketCtor: WebSocketCtor | undefined;
  private readonly EventSourceCtor: EventSourceCtor | undefined;
  private readonly fetchFn: FetchLike | undefined;
  private readonly creditsMode: CreditsOption | undefined;
  private readonly creditWindow: number;
  private readonly wsFailuresBeforeSse: number;
  private readonly connectTimeoutMs: number;
  private readonly sseIdleTimeoutMs: number;
  private readonly backoff: Backoff;
  private readonly random: () => number;
  private readonly tracker: PositionTracker;
  private readonly desired = new Set<string>();
  private waiters: Waiter[] = [];

  private st: ConnectionState = 'closed';
  private conn: Conn | null = null;
  /** Bumped by every attempt and by close(): stale async work checks it. */
  private gen = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private livenessTimer: ReturnType<typeof setInterval> | null = null;
  private attempts = 0;
  private wsFailStreak = 0;
  /** SSE worked last time: keep using it until it fails to open. */
  private preferSse = false;
  private sseOpenFailures = 0;
  /** SSE only, no channels: nothing to open until something is subscribed. */
  private idle = false;
  private sseRestartQueued = false;
  private sseCursor: { key: string; id: string } | null = null;
  private route: Route | null = null;
  private routeStale = true;
  private reqSeq = 0;
  private welcome: WelcomeEvent | null = null;
  private readonly counters: ClientStats = { received: 0, delivered: 0, duplicates: 0, unwanted: 0, granted: 0 };

  constructor(private readonly options: FanoutClientOptions) {
    super();
    const o = options;
    const origin = (globalThis as { location?: { origin?: string } }).location?.origin;
    const base = (o.url ?? (o.routerUrl ? undefined : origin))?.replace(/\/+$/, '').replace(/\/v1\/ws$/, '');
    if (base === undefined && !o.routerUrl) throw new TypeError('FanoutClient needs a url (the gateway base URL) or a routerUrl');
    if (base !== undefined && !/^(https?|wss?):\/\//.test(base))
      throw new TypeError(`url must start with http://, https://, ws:// or wss://, not ${JSON.stringify(base)}`);
    this.wsBase = base === undefined ? null : base.replace(/^http/, 'ws');
    this.httpBase = base === undefined ? null : base.replace(/^ws/, 'http');

    this.WebSocketCtor = o.WebSocket ?? (globalThis as { WebSocket?: WebSocketCtor }).WebSocket;
    const globalFetch = (globalThis as { fetch?: FetchLike }).fetch;
    this.fetchFn = o.fetch ?? (globalFetch ? (globalFetch.bind(globalThis) as FetchLike) : undefined);
    this.EventSourceCtor = o.EventSource ?? (this.fetchFn ? undefined : (globalThis as { EventSource?: EventSourceCtor }).EventSource);
    const wanted = o.transports ?? ['websocket', 'sse'];
    for (const t of wanted)
      if (t !== 'websocket' && t !== 'sse') throw new TypeError(`unknown transport ${JSON.stringify(t)}; use 'websocket' and/or 'sse'`);
    this.transports = wanted.filter((t) =>
      t === 'websocket' ? this.WebSocketCtor !== undefined : this.EventSourceCtor !== undefined || this.fetchFn !== undefined,
    );
    if (this.transports.length === 0) {
      throw new TypeError(
        'no usable transport: pass a WebSocket class (in Node 20: the `ws` package), or allow SSE where fetch or EventSource exists',
      );
    }
    if (o.routerUrl && !this.fetchFn) throw new TypeError('routerUrl needs fetch');

    const c = o.credits;
    if (c !== undefined && c !== 'auto' && c !== 'unlimited' && !(Number.isInteger(c) && c >= 0 && c <= MAX_CREDIT_GRANT)) {
      throw new TypeError(`credits must be 'auto', 'unlimited' or an integer 0..${MAX_CREDIT_GRANT}`);
    }
    this.creditsMode = c;
    this.creditWindow = o.creditWindow ?? 1000;
    if (!Number.isInteger(this.creditWindow) || this.creditWindow < 2 || this.creditWindow > MAX_CREDIT_GRANT)
      throw new TypeError(`creditWindow must be an integer 2..${MAX_CREDIT_GRANT}`);
    this.wsFailuresBeforeSse = Math.max(1, o.wsFailuresBeforeSse ?? 3);
    this.connectTimeoutMs = o.connectTimeoutMs ?? 10_000;
    this.sseIdleTimeoutMs = o.sseIdleTimeoutMs ?? 75_000;
    this.random = o.random ?? Math.random;
    this.backoff = new Backoff(o.backoff, this.random);
    this.tracker = new PositionTracker();
    if (o.positions) this.tracker.load(o.positions);
    if (o.channels) {
      this.validate(o.channels);
      for (const ch of o.channels) this.desired.add(ch);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Public API

  get state(): ConnectionState {
    return this.st;
  }

  /** The transport of the current connection, if any. */
  get transport(): TransportKind | null {
    return this.conn?.kind ?? null;
  }

  /** What the gateway said in its last welcome frame. */
  get server(): WelcomeEvent | null {
    return this.welcome;
  }

  /** The channels the client wants (subscribed, or to be subscribed on the next connection). */
  get channels(): string[] {
    return [...this.desired];
  }

  get stats(): Readonly<ClientStats> {
    return { ...this.counters };
  }

  /** Last position per channel: what the client resumes from. Save it to resume across page loads. */
  positions(): Record<string, string> {
    return this.tracker.snapshot();
  }

  /** Opens the connection (and keeps it open until `close()` or a terminal close code). */
  connect(): this {
    if (this.st !== 'closed') return this;
    this.backoff.reset();
    this.wsFailStreak = 0;
    this.attempts = 0;
    this.setState('connecting', {});
    void this.attempt();
    return this;
  }

  /**
   * Subscribes to channels (`ns:name` or `ns:*`). Resolves once the gateway confirmed all of them,
   * on this connection or the next; rejects with a FanoutClientError if it refused them (they are
   * then dropped). Throws a TypeError for names that are not channels.
   */
  subscribe(channels: string | string[]): Promise<void> {
    const list = this.validate(typeof channels === 'string' ? [channels] : channels);
    const added = list.filter((ch) => !this.desired.has(ch));
    for (const ch of list) this.desired.add(ch);
    const conn = this.conn;
    const remaining = new Set(list.filter((ch) => !(conn?.welcomed && conn.active.has(ch))));
    const p =
      remaining.size === 0
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => {
            this.waiters.push({ remaining, resolve, reject });
          });
    // Not awaiting it must not crash Node with an unhandled rejection; awaiting still sees it.
    p.catch(noop);
    if (conn?.welcomed && conn.kind === 'websocket') this.sendSubscribe(conn, list);
    else if (conn && conn.kind === 'sse' && added.length > 0) this.restartSse();
    else if (this.idle && this.st !== 'closed') {
      this.idle = false;
      void this.attempt();
    }
    return p;
  }

  /** Unsubscribes; messages of these channels still in flight are not delivered. Forgets their positions. */
  unsubscribe(channels: string | string[]): void {
    const list = this.validate(typeof channels === 'string' ? [channels] : channels).filter((ch) => this.desired.has(ch));
    if (list.length === 0) return;
    for (const ch of list) {
      this.desired.delete(ch);
      if (isPattern(ch)) {
        const ns = namespaceOf(ch);
        for (const known of Object.keys(this.tracker.snapshot()))
          if (namespaceOf(known) === ns && !this.desired.has(known)) this.tracker.delete(known);
      } else if (!this.desired.has(`${namespaceOf(ch)}:*`)) {
        this.tracker.delete(ch);
      }
    }
    for (const w of [...this.waiters]) {
      for (const ch of list) w.remaining.delete(ch);
      if (w.remaining.size === 0) this.settle(w, null);
    }
    const conn = this.conn;
    if (conn?.welcomed && conn.kind === 'websocket') {
      const live = list.filter((ch) => conn.active.has(ch) || conn.inflight.has(ch));
      const frames = unsubscribeFrames(live, this.reqSeq + 1);
      this.reqSeq += frames.length;
      for (const f of frames) {
        conn.requests.set(f.id, { op: 'unsubscribe', channels: f.channels, withPositions: [] });
        conn.transport.send(f.text);
      }
      for (const ch of live) {
        conn.active.delete(ch);
        conn.inflight.delete(ch);
      }
    } else if (conn?.kind === 'sse') {
      this.restartSse();
    }
  }

  /**
   * Grants the gateway `n` more messages on the current connection (WebSocket only). Returns false
   * when there is no open WebSocket connection: every new connection starts with `credits` again.
   */
  grant(n: number): boolean {
    if (!Number.isInteger(n) || n < 1) throw new TypeError('grant(n) takes a positive integer');
    const conn = this.conn;
    if (!conn?.welcomed || !conn.transport.canSend) return false;
    for (let left = n; left > 0; left -= MAX_CREDIT_GRANT) {
      const k = Math.min(left, MAX_CREDIT_GRANT);
      if (!conn.transport.send(creditFrame(k))) return false;
      this.counters.granted += k;
    }
    return true;
  }

  /** Closes the connection and stops reconnecting. `connect()` opens it again, resuming from positions. */
  close(): void {
    this.gen++;
    this.clearRetry();
    this.stopLiveness();
    this.idle = false;
    const conn = this.conn;
    this.conn = null;
    conn?.transport.close(1000, 'client closed');
    for (const w of [...this.waiters])
      this.settle(w, new FanoutClientError('closed', 'the client was closed before the gateway confirmed the subscription'));
    if (this.st !== 'closed') this.setState('closed', { reason: 'closed by the client' });
  }

  // ---------------------------------------------------------------------------------------------
  // Connecting

  private async attempt(): Promise<void> {
    this.retryTimer = null;
    const gen = ++this.gen;
    if (this.options.routerUrl && (this.route === null || this.routeStale)) {
      try {
        const user = this.options.user ?? (typeof this.options.token === 'string' ? tokenSubject(this.options.token) : null);
        if (!user) throw new Error('no user to route: pass `user`, or a token with a `sub`');
        this.route = await lookupRoute(this.fetchFn!, this.options.routerUrl, user, this.options.region, this.connectTimeoutMs);
        this.routeStale = false;
      } catch (err) {
        if (gen !== this.gen || this.st === 'closed') return;
        this.emit('error', { code: 'router_unavailable', message: (err as Error).message, fatal: false });
        // No owner during a rebalance: the router says when to ask again, which does not grow the backoff.
        const asked = err instanceof RouterError ? err.retryAfterMs : undefined;
        if (asked !== undefined)
          this.scheduleRetry(retryAfterDelay(asked, MAX_SERVER_DELAY_MS, this.random), {
            reason: err instanceof RouterError && err.code ? err.code : 'retry_after',
            retryAfterMs: asked,
          });
        else this.scheduleRetry(undefined, {});
        return;
      }
      if (gen !== this.gen || this.st === 'closed') return;
    }
    let token: string | undefined;
    if (typeof this.options.token === 'function') {
      try {
        token = await this.options.token();
      } catch (err) {
        if (gen !== this.gen || this.st === 'closed') return;
        this.emit('error', {
          code: 'token_unavailable',
          message: `the token function failed: ${(err as Error)?.message ?? String(err)}`,
          fatal: false,
        });
        this.scheduleRetry(undefined, {});
        return;
      }
      if (gen !== this.gen || this.st === 'closed') return;
    } else {
      token = this.options.token;
    }

    const kind = this.chooseTransport();
    if (kind === 'sse' && this.desired.size === 0) {
      // SSE streams name their channels up front: wait for a subscribe.
      this.idle = true;
      return;
    }
    const channels = [...this.desired];
    const channelsKey = [...channels].sort().join(',');
    const { url, resumed } = kind === 'websocket' ? { url: this.wsUrl(token), resumed: [] } : this.sseUrl(token, channels, channelsKey);
    this.attempts++;
    this.emit('attempt', { attempt: this.attempts, transport: kind, url: redact(url) });
    if (gen !== this.gen || this.st === 'closed') return; // a listener closed the client
    const conn: Conn = {
      kind,
      transport: null as unknown as Transport,
      opened: false,
      welcomed: false,
      openedAt: 0,
      lastFrameAt: Date.now(),
      heartbeatMs: DEFAULT_HEARTBEAT_MS,
      maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
      active: new Set(),
      inflight: new Set(kind === 'sse' ? channels : []),
      requests: new Map(),
      channelsKey,
      resumed,
      used: 0,
      autoCredits: kind === 'websocket' && this.creditsMode === 'auto',
      authError: null,
    };
    const handlers = {
      open: () => this.onOpen(conn),
      frame: (text: string, eventId: string | undefined) => this.onFrame(conn, text, eventId),
      activity: () => {
        conn.lastFrameAt = Date.now();
      },
      close: (info: TransportClose) => this.lost(conn, info),
    };
    this.conn = conn;
    if (kind === 'websocket') conn.transport = new WebSocketTransport(this.WebSocketCtor!, url, handlers, this.connectTimeoutMs);
    else if (this.EventSourceCtor) conn.transport = new EventSourceTransport(this.EventSourceCtor, url, handlers, this.connectTimeoutMs);
    else conn.transport = new FetchSseTransport(this.fetchFn!, url, handlers, this.connectTimeoutMs);
  }

  private chooseTransport(): TransportKind {
    const ws = this.transports.includes('websocket');
    const sse = this.transports.includes('sse');
    if (!ws) return 'sse';
    if (!sse || this.desired.size === 0) return 'websocket';
    return this.preferSse || this.wsFailStreak >= this.wsFailuresBeforeSse ? 'sse' : 'websocket';
  }

  private wsUrl(token: string | undefined): string {
    const base = this.route ? this.route.ws_url : `${this.wsBase}/v1/ws`;
    const q: string[] = [];
    if (token) q.push(`token=${encodeURIComponent(token)}`);
    const c = this.creditsMode;
    if (c !== undefined) q.push(`credits=${c === 'auto' ? this.creditWindow : c}`);
    return q.length === 0 ? base : `${base}${base.includes('?') ? '&' : '?'}${q.join('&')}`;
  }

  private sseUrl(token: string | undefined, channels: string[], key: string): { url: string; resumed: string[] } {
    const base = `${this.route ? this.route.url.replace(/\/+$/, '') : this.httpBase}/v1/sse`;
    const q = [`channels=${channels.map(encodeURIComponent).join(',')}`];
    if (token) q.push(`token=${encodeURIComponent(token)}`);
    // The stream's own last event id when the channel set is the same; else one built from positions.
    const cursor = this.sseCursor && this.sseCursor.key === key ? this.sseCursor.id : cursorFromPositions(channels, this.tracker);
    if (cursor) q.push(`cursor=${encodeURIComponent(cursor)}`);
    const resumed = cursor ? channels.filter((ch) => !isPattern(ch) && this.tracker.has(ch)) : [];
    return { url: `${base}?${q.join('&')}`, resumed };
  }

  private onOpen(conn: Conn): void {
    if (conn !== this.conn) return;
    conn.opened = true;
    conn.lastFrameAt = Date.now();
    if (conn.kind === 'websocket') {
      this.wsFailStreak = 0;
      this.preferSse = false;
    } else {
      this.preferSse = true;
      this.sseOpenFailures = 0;
    }
    this.startLiveness(conn);
  }

  // ---------------------------------------------------------------------------------------------
  // Frames

  private onFrame(conn: Conn, text: string, eventId: string | undefined): void {
    if (conn !== this.conn) return;
    conn.lastFrameAt = Date.now();
    const f = readFrame(text);
    if (f === null) return;
    switch (f.t) {
      case 'msg':
        this.onMessage(conn, f);
        break;
      case 'welcome':
        this.onWelcome(conn, f);
        break;
      case 'subscribed':
        this.onSubscribed(conn, f);
        break;
      case 'unsubscribed':
        if (f.id !== undefined) conn.requests.delete(f.id);
        if (f.channels !== undefined) this.emit('unsubscribed', { channels: f.channels });
        break;
      case 'error':
        this.onError(conn, f);
        break;
      case 'reconnect':
        this.onReconnect(conn, f);
        return;
      case 'reset':
        this.onReset(f);
        break;
      case 'gap':
        if (this.wants(f.ch)) this.emit('gap', { channel: f.ch, from: f.from, to: f.to, count: f.count });
        break;
      case 'close':
        this.lost(conn, { code: f.code, reason: f.reason, opened: true });
        return;
      default:
      // pong, credits, and frames this client does not know yet
    }
    if (eventId !== undefined && conn.kind === 'sse' && conn === this.conn) this.sseCursor = { key: conn.channelsKey, id: eventId };
  }

  private onMessage(conn: Conn, f: Frame<'msg'>): void {
    this.counters.received++;
    const ch = f.ch;
    if (ch !== undefined) {
      if (!this.wants(ch)) {
        this.counters.unwanted++;
      } else if (!this.tracker.accept(ch, f.pos)) {
        this.counters.duplicates++;
      } else {
        this.counters.delivered++;
        this.emit('message', { channel: ch, data: f.data, id: f.id, position: f.pos ?? '', ts: f.ts });
      }
    }
    // Every msg used a credit, duplicate or not; grant them back once half the window is used.
    if (conn.autoCredits && conn === this.conn) {
      conn.used++;
      if (conn.used >= Math.floor(this.creditWindow / 2) && conn.transport.send(creditFrame(conn.used))) {
        this.counters.granted += conn.used;
        conn.used = 0;
      }
    }
  }

  private onWelcome(conn: Conn, f: Frame<'welcome'>): void {
    conn.welcomed = true;
    conn.openedAt = Date.now();
    if (f.heartbeatS !== undefined) conn.heartbeatMs = f.heartbeatS * 1000;
    if (f.maxFrameBytes !== undefined) conn.maxFrameBytes = f.maxFrameBytes;
    if (f.credits === 'unlimited') conn.autoCredits = false;
    this.attempts = 0;
    this.welcome = {
      node: f.node,
      region: f.region,
      heartbeatS: conn.heartbeatMs / 1000,
      maxFrameBytes: conn.maxFrameBytes,
      user: f.user,
      credits: f.credits,
      transport: conn.kind,
    };
    this.emit('welcome', this.welcome);
    if (conn !== this.conn) return;
    this.setState('open', { transport: conn.kind });
    if (conn !== this.conn) return;
    // WebSocket: (re)subscribe everything, with positions. SSE subscribed with its URL.
    if (conn.kind === 'websocket') this.sendSubscribe(conn, [...this.desired]);
  }

  /** Sends subscribe frames for the channels not yet subscribed on `conn`: at most 100 channels and maxFrameBytes per frame. */
  private sendSubscribe(conn: Conn, channels: string[]): void {
    const todo = channels.filter((ch) => !conn.active.has(ch) && !conn.inflight.has(ch));
    if (todo.length === 0) return;
    const frames = subscribeFrames(todo, (ch) => this.tracker.get(ch), conn.maxFrameBytes, this.reqSeq + 1);
    this.reqSeq += frames.length;
    for (const f of frames) {
      conn.requests.set(f.id, { op: 'subscribe', channels: f.channels, withPositions: f.withPositions });
      for (const ch of f.channels) conn.inflight.add(ch);
      conn.transport.send(f.text);
    }
  }

  private onSubscribed(conn: Conn, f: Frame<'subscribed'>): void {
    const channels = f.channels;
    const req = f.id !== undefined ? conn.requests.get(f.id) : undefined;
    if (f.id !== undefined) conn.requests.delete(f.id);
    for (const ch of channels) {
      conn.inflight.delete(ch);
      if (this.desired.has(ch)) conn.active.add(ch);
    }
    for (const w of [...this.waiters]) {
      for (const ch of channels) w.remaining.delete(ch);
      if (w.remaining.size === 0) this.settle(w, null);
    }
    const resumed = conn.kind === 'sse' ? conn.resumed.filter((ch) => channels.includes(ch)) : (req?.withPositions ?? []);
    this.emit('subscribed', { channels, resumed });
  }

  private onError(conn: Conn, f: Frame<'error'>): void {
    const { code, message } = f;
    const req = f.id !== undefined ? conn.requests.get(f.id) : undefined;
    if (req) conn.requests.delete(f.id!);
    if (code.startsWith('token_') && req === undefined) {
      // The gateway closes with 4501 right after; reported once, with the close.
      conn.authError = { code, message };
      return;
    }
    if (code === 'wrong_gateway') {
      this.routeStale = true;
      this.emit('error', { code, message, fatal: false });
      this.lost(conn, { code: CLOSE_CODES.REBALANCE, reason: 'wrong gateway', opened: true });
      return;
    }
    if (req?.op === 'subscribe') {
      for (const ch of req.channels) conn.inflight.delete(ch);
      if (code === 'invalid_position' && req.withPositions.length > 0) {
        // The gateway does not take these positions: resume those channels live instead.
        for (const ch of req.withPositions) this.tracker.delete(ch);
        this.emit('error', { code, message, fatal: false, channels: req.withPositions });
        this.sendSubscribe(
          conn,
          req.channels.filter((ch) => this.desired.has(ch)),
        );
        return;
      }
      const dropped = req.channels.filter((ch) => this.desired.has(ch));
      for (const ch of dropped) this.desired.delete(ch);
      const err = new FanoutClientError(code, message, dropped);
      for (const w of [...this.waiters]) if (dropped.some((ch) => w.remaining.has(ch))) this.settle(w, err);
      this.emit('error', { code, message, fatal: false, channels: dropped });
      return;
    }
    this.emit('error', { code, message, fatal: false });
  }

  private onReconnect(conn: Conn, f: Frame<'reconnect'>): void {
    const { reason } = f;
    const delayMs = f.delayMs === undefined ? undefined : Math.min(f.delayMs, MAX_SERVER_DELAY_MS);
    // The gateway is going away (drain) or no longer owns the user's partition: ask the router again
    // rather than knock on the same address, which a replacement may hold before it owns anything.
    if (reason === 'rebalance' || reason === 'shutdown') this.routeStale = true;
    this.emit('reconnect', { reason, delayMs: delayMs ?? -1 });
    if (conn !== this.conn) return;
    this.lost(conn, { code: 1000, reason: `gateway asked to reconnect (${reason})`, opened: true }, delayMs);
  }

  private onReset(f: Frame<'reset'>): void {
    const { position } = f;
    // Live messages follow the reset: continue from the gateway's newest position, or from nothing.
    if (position !== null && isValidPosition(position)) this.tracker.set(f.ch, position);
    else this.tracker.delete(f.ch);
    this.sseCursor = null;
    if (this.wants(f.ch)) this.emit('reset', { channel: f.ch, reason: f.reason, position });
  }

  // ---------------------------------------------------------------------------------------------
  // Losing a connection

  /** The connection ended (or is being ended): decide whether and when to try again. */
  private lost(conn: Conn, info: TransportClose, serverDelayMs?: number): void {
    if (conn !== this.conn) return;
    this.conn = null;
    this.stopLiveness();
    conn.transport.close(1000, 'reconnecting');
    this.backoff.connectionEnded(conn.welcomed ? Date.now() - conn.openedAt : 0);

    const d = decideAfterLoss(
      { close: info, transport: conn.kind, authError: conn.authError, serverDelayMs, routed: Boolean(this.options.routerUrl) },
      this.random,
    );
    const fatal = d.giveUp;
    if (d.askRouter) this.routeStale = true;
    if (d.resumeLost !== undefined) {
      // The stream cannot resume from where we were: say so per channel, and start live.
      this.sseCursor = null;
      for (const ch of this.desired) {
        if (isPattern(ch)) continue;
        const had = this.tracker.has(ch);
        this.tracker.delete(ch);
        if (had) this.emit('reset', { channel: ch, reason: d.resumeLost, position: null });
      }
    }
    if (d.sseMissing) {
      // No SSE here: back to WebSocket.
      this.preferSse = false;
      this.wsFailStreak = 0;
    }
    if (d.notice) this.emit('error', { ...d.notice, fatal: false });
    if (d.transportFailed) {
      if (conn.kind === 'websocket') {
        this.wsFailStreak++;
      } else {
        this.preferSse = false;
        this.wsFailStreak = 0;
        // An EventSource cannot tell an expired cursor from a network error: after two refusals, resume without it.
        if (++this.sseOpenFailures >= 2 && conn.transport instanceof EventSourceTransport) this.sseCursor = null;
      }
    }

    this.emit('disconnect', {
      code: info.code,
      reason: info.reason,
      transport: conn.kind,
      opened: info.opened,
      willReconnect: fatal === null,
      ...(info.httpStatus !== undefined ? { httpStatus: info.httpStatus } : {}),
      ...(info.retryAfterMs !== undefined ? { retryAfterMs: info.retryAfterMs } : {}),
    });
    if (this.conn !== null || this.st === 'closed') return; // a listener reconnected or closed
    if (!fatal && conn.authError) {
      // A token check that failed for a reason that passes (close 4003: the key set was unreachable).
      this.emit('error', { ...conn.authError, fatal: false, closeCode: info.code });
      if (this.conn !== null || (this.st as ConnectionState) === 'closed') return;
    }
    if (fatal) {
      this.emit('error', { ...fatal, fatal: true, closeCode: info.code });
      for (const w of [...this.waiters]) this.settle(w, new FanoutClientError(fatal.code, fatal.message));
      if ((this.st as ConnectionState) !== 'closed')
        this.setState('closed', { code: info.code, reason: info.reason || fatal.message, transport: conn.kind });
      return;
    }
    this.scheduleRetry(d.delayMs, {
      code: info.code,
      reason: d.retryReason ?? info.reason,
      transport: conn.kind,
      ...(d.retryReason !== undefined ? { retryAfterMs: info.retryAfterMs } : {}),
    });
  }

  private scheduleRetry(
    serverDelayMs: number | undefined,
    ctx: { code?: number; reason?: string; transport?: TransportKind; retryAfterMs?: number },
  ): void {
    this.clearRetry();
    let delayMs: number;
    if (serverDelayMs !== undefined) {
      delayMs = serverDelayMs;
      // A delay the gateway named (a reconnect frame, a 503's Retry-After) does not grow the
      // backoff: the gateway is up and said when, so a rolling restart or a storm does not push
      // the next ordinary failure's delay toward the 15 s ceiling.
    } else {
      delayMs = this.backoff.next();
    }
    const retryAt = Date.now() + delayMs;
    this.retryTimer = setTimeout(() => void this.attempt(), delayMs);
    this.setState('reconnecting', { ...ctx, delayMs, retryAt }, true);
  }

  private restartSse(): void {
    if (this.sseRestartQueued) return;
    this.sseRestartQueued = true;
    // Several subscribe/unsubscribe calls in one turn make one new stream.
    queueMicrotask(() => {
      this.sseRestartQueued = false;
      const conn = this.conn;
      if (!conn || conn.kind !== 'sse' || this.st === 'closed') return;
      if ([...this.desired].sort().join(',') === conn.channelsKey) return;
      this.conn = null;
      this.stopLiveness();
      conn.transport.close();
      this.clearRetry();
      this.setState('reconnecting', { reason: 'changing channels', transport: 'sse', delayMs: 0, retryAt: Date.now() }, true);
      void this.attempt();
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Liveness: a dead network often never reports a close.

  private startLiveness(conn: Conn): void {
    this.stopLiveness();
    if (!conn.transport.seesHeartbeats) return;
    const t = setInterval(() => {
      if (conn !== this.conn) return this.stopLiveness();
      const quiet = Date.now() - conn.lastFrameAt;
      const deadAfter = conn.kind === 'websocket' ? conn.heartbeatMs * 1.5 : this.sseIdleTimeoutMs;
      if (quiet > deadAfter) {
        this.lost(conn, {
          code: ABNORMAL_CLOSURE,
          reason: `nothing from the gateway for ${Math.round(quiet / 1000)} s`,
          opened: conn.opened,
        });
      } else if (conn.kind === 'websocket' && conn.welcomed && quiet > conn.heartbeatMs / 2) {
        conn.transport.send(PING_FRAME);
      }
    }, 1000);
    (t as { unref?: () => void }).unref?.();
    this.livenessTimer = t;
  }

  private stopLiveness(): void {
    if (this.livenessTimer !== null) clearInterval(this.livenessTimer);
    this.livenessTimer = null;
  }

  // ---------------------------------------------------------------------------------------------
  // Helpers

  private wants(channel: string): boolean {
    return this.desired.has(channel) || this.desired.has(`${namespaceOf(channel)}:*`);
  }

  private validate(channels: unknown): string[] {
    if (!Array.isArray(channels)) throw new TypeError('channels must be a channel name or an array of them');
    for (const ch of channels) {
      if (!isSubscribable(ch))
        throw new TypeError(
          `${JSON.stringify(String(ch).slice(0, 80))} is not a channel: "<namespace>:<name>" (namespace [a-z][a-z0-9-]{0,31}, name [A-Za-z0-9._=@-]{1,200}) or "<namespace>:*"`,
        );
    }
    return [...new Set(channels as string[])];
  }

  private settle(w: Waiter, err: Error | null): void {
    const i = this.waiters.indexOf(w);
    if (i >= 0) this.waiters.splice(i, 1);
    if (err) w.reject(err);
    else w.resolve();
  }

  private clearRetry(): void {
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  private setState(state: ConnectionState, ctx: Partial<Omit<StateEvent, 'state' | 'previous' | 'attempt'>>, always = false): void {
    const previous = this.st;
    if (previous === state && !always) return;
    this.st = state;
    this.emit('state', { state, previous, transport: ctx.transport ?? this.conn?.kind ?? null, attempt: this.backoff.attempt, ...ctx });
  }
}

function redact(url: string): string {
  return url.replace(/([?&]token=)[^&]*/, '$1…');
}
