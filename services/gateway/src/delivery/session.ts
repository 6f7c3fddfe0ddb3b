/**
 * What a connection may do, whatever its transport: subscribe, unsubscribe, ping; and the
 * bookkeeping of opening and closing. Transports turn wire events into these calls.
 */
import {
  CLOSE,
  creditsFrame,
  ERRORS,
  errorFrame,
  FanoutError,
  isFrameError,
  isUserChannel,
  MAX_CREDIT_GRANT,
  parseClientFrame,
  parseNamespacePattern,
  parsePosition,
  pongFrame,
  subscriptionFrame,
  USER_NAMESPACE,
  welcomeFrame,
  type ErrorCode,
  type RequestId,
} from '@fanout/protocol';
import type { ChannelPermissions, Principal, TokenVerifier } from '@fanout/auth';
import type { Logger } from '@fanout/observability';
import { Connection, type ConnectionLimits } from './connection.js';
import type { Hub } from './hub.js';
import type { MemoryBudget } from './memory-budget.js';
import type { Sink } from './sink.js';
import type { Resumer } from './resume.js';

export interface SessionHooks {
  onOpen?(conn: Connection): void;
  onClose?(conn: Connection, code: number): void;
  onProtocolError?(code: ErrorCode): void;
}

export interface SessionOptions {
  hub: Hub;
  logger: Logger;
  node: string;
  region: string;
  heartbeatS: number;
  maxFrameBytes: number;
  maxSubscriptions: number;
  maxErrorsPer10s: number;
  permissions: ChannelPermissions;
  tokens: TokenVerifier;
  /** Whether this gateway serves user channels (`user:<id>`). */
  userChannels: boolean;
  /** Whether this gateway owns the partition of a user channel now. */
  ownsUserChannel(channel: string): boolean;
  /** The message of a wrong_gateway answer (who owns it, where to ask). */
  ownerHint(channel: string): string;
  limits: ConnectionLimits;
  budget: MemoryBudget | null;
  /** Credits a connection starts with when it does not ask (Infinity = unlimited). */
  initialCredits: number;
  allowUnlimitedCredits: boolean;
  resumer: Resumer | null;
  hooks?: SessionHooks;
}

/** What a client asked for when connecting (transport-specific parameters, already extracted). */
export interface ConnectRequest {
  token: string | null;
  /** `?credits=`: a number of messages, `unlimited`, or null for the server default. */
  credits: string | null;
  /** Already verified by the transport (SSE authorizes before it starts streaming). */
  principal?: Principal;
  /** Transports without credits (SSE) always run unlimited, bounded by their queue policy. */
  forceUnlimited?: boolean;
  /** Runs once the connection is authenticated and welcomed (SSE subscribes here). */
  afterWelcome?(conn: Connection): void;
}

/** The window of the protocol-error allowance: at most `maxErrorsPer10s` error frames in it. */
const ERROR_WINDOW_MS = 10_000;

/**
 * Protocol errors per connection in a sliding window: a client past its allowance is not
 * answered again but closed (4500 protocol violation). Only connections that erred have an entry.
 */
export class ErrorAllowance {
  private readonly times = new WeakMap<Connection, number[]>();

  constructor(private readonly maxPerWindow: number) {}

  /** Counts one error of `conn`; true if that is more than the allowance in the window. */
  exceeded(conn: Connection, now = Date.now()): boolean {
    let times = this.times.get(conn);
    if (!times) this.times.set(conn, (times = []));
    times.push(now);
    while (times.length > 0 && times[0]! < now - ERROR_WINDOW_MS) times.shift();
    return times.length > this.maxPerWindow;
  }
}

export class Session {
  private readonly errors: ErrorAllowance;

  constructor(private readonly opts: SessionOptions) {
    this.errors = new ErrorAllowance(opts.maxErrorsPer10s);
  }

  /** Creates the connection for a new socket, registers it, and authenticates it. */
  connect(sink: Sink, meta: { transport: string; remote?: string }, req: ConnectRequest): Connection {
    let credits = this.opts.initialCredits;
    let creditError: FanoutError | null = null;
    if (req.credits === 'unlimited') {
      if (this.opts.allowUnlimitedCredits) credits = Infinity;
      else
        creditError = new FanoutError(
          'unlimited_not_allowed',
          `${ERRORS.unlimited_not_allowed.message} The connection starts with ${this.opts.initialCredits} credits.`,
        );
    } else if (req.credits !== null) {
      const n = /^\d{1,7}$/.test(req.credits) ? Number(req.credits) : NaN;
      if (Number.isInteger(n) && n <= MAX_CREDIT_GRANT) credits = n;
      else
        creditError = new FanoutError(
          'invalid_credit',
          `?credits= must be 0..${MAX_CREDIT_GRANT} or "unlimited"; the connection starts with the default.`,
        );
    }
    if (req.forceUnlimited) {
      credits = Infinity;
      creditError = null;
    }
    const conn = new Connection(sink, this.opts.limits, this.opts.hub.stats, this.opts.budget, credits, meta);
    if (req.principal) conn.principal = req.principal;
    this.open(conn, req.token, creditError, req.afterWelcome);
    return conn;
  }

  private open(conn: Connection, token: string | null, creditError: FanoutError | null, afterWelcome?: (conn: Connection) => void): void {
    this.opts.hub.add(conn);
    this.opts.hooks?.onOpen?.(conn);
    const welcome = () => {
      conn.authenticated = true;
      conn.sendControl(
        welcomeFrame({
          node: this.opts.node,
          region: this.opts.region,
          heartbeatS: this.opts.heartbeatS,
          maxFrameBytes: this.opts.maxFrameBytes,
          user: conn.principal.userId,
          credits: conn.credits,
        }),
      );
      if (creditError) this.reject(conn, creditError.code, creditError.message);
      afterWelcome?.(conn);
    };
    if (token === null) return welcome();
    if (!this.opts.tokens.enabled)
      return this.refuseToken(
        conn,
        new FanoutError('token_invalid', 'This gateway has no token keys configured; connect without a token.'),
      );
    this.opts.tokens.verify(token).then(
      (principal) => {
        if (conn.closed) return;
        conn.principal = principal;
        welcome();
      },
      (err: unknown) => this.refuseToken(conn, err instanceof FanoutError ? err : new FanoutError('token_invalid')),
    );
  }

  private refuseToken(conn: Connection, err: FanoutError): void {
    this.opts.hooks?.onProtocolError?.(err.code);
    conn.sendControl(errorFrame(err.code, err.message));
    const close = err.retriable ? CLOSE.TRY_AGAIN : CLOSE.UNAUTHORIZED;
    conn.closeWith(close.code, close.reason);
  }

  closed(conn: Connection, code: number): void {
    conn.markClosed();
    this.opts.hub.remove(conn);
    this.opts.hooks?.onClose?.(conn, code);
  }

  drained(conn: Connection): void {
    this.opts.hub.drain(conn);
  }

  /** Answers a bad frame with an error frame; too many in a short time close the connection (4500). */
  reject(conn: Connection, code: ErrorCode, message?: string, id?: RequestId): void {
    this.opts.hooks?.onProtocolError?.(code);
    if (this.errors.exceeded(conn)) return conn.closeWith(CLOSE.PROTOCOL_VIOLATION.code, CLOSE.PROTOCOL_VIOLATION.reason);
    conn.sendControl(errorFrame(code, message ?? ERRORS[code].message, id));
  }

  handle(conn: Connection, text: string): void {
    if (!conn.authenticated) return this.reject(conn, 'bad_frame', 'Wait for the welcome frame before sending frames.');
    const frame = parseClientFrame(text);
    if (isFrameError(frame)) return this.reject(conn, frame.code, frame.message, frame.id);
    switch (frame.op) {
      case 'credit': {
        if ('unlimited' in frame) {
          if (!this.opts.allowUnlimitedCredits) return this.reject(conn, 'unlimited_not_allowed', undefined, frame.id);
          conn.credits = Infinity;
          this.opts.hub.wake(conn);
        } else if (conn.grant(frame.n, MAX_CREDIT_GRANT)) {
          this.opts.hub.wake(conn);
        }
        if (frame.id !== undefined) conn.sendControl(creditsFrame(frame.id, conn.credits));
        return;
      }
      case 'ping':
        conn.sendControl(pongFrame(frame.id));
        return;
      case 'subscribe': {
        for (const ch of frame.channels) {
          const ns = parseNamespacePattern(ch);
          const user = ns === USER_NAMESPACE || (ns === null && isUserChannel(ch));
          if (user && !this.opts.userChannels) {
            return this.reject(conn, 'forbidden_channel', `${ch} is a user channel; this gateway does not serve user channels.`, frame.id);
          }
          if (!this.opts.permissions.allows(conn.principal, ch)) {
            const why = user
              ? 'a user channel is readable only with a connect token whose sub is that user'
              : 'its namespace is not public and the connect token has no pattern matching it';
            return this.reject(conn, 'forbidden_channel', `Not allowed to subscribe to ${ch}: ${why}.`, frame.id);
          }
          if (user && !this.opts.ownsUserChannel(ch)) return this.reject(conn, 'wrong_gateway', this.opts.ownerHint(ch), frame.id);
        }
        const total = conn.channels.size + conn.namespaces.size;
        const adding = frame.channels.filter((ch) => {
          const ns = parseNamespacePattern(ch);
          return ns !== null ? !conn.namespaces.has(ns) : !conn.channels.has(ch);
        }).length;
        if (total + adding > this.opts.maxSubscriptions) {
          return this.reject(
            conn,
            'too_many_channels',
            `This connection holds ${total} subscriptions; the limit is ${this.opts.maxSubscriptions}.`,
            frame.id,
          );
        }
        const fresh = frame.channels.filter((ch) => !conn.channels.has(ch));
        for (const ch of frame.channels) this.opts.hub.subscribe(conn, ch, parseNamespacePattern(ch));
        conn.sendControl(subscriptionFrame('subscribed', frame.channels, frame.id));
        // Resume after the answer, in the same turn as the subscription: nothing falls between
        // the replay and the live stream. A channel already subscribed is not replayed again.
        if (frame.positions && this.opts.resumer) {
          for (const [ch, p] of Object.entries(frame.positions)) {
            if (fresh.includes(ch)) this.opts.resumer.resume(conn, ch, parsePosition(p)!);
          }
        }
        return;
      }
      case 'unsubscribe':
        for (const ch of frame.channels) this.opts.hub.unsubscribe(conn, ch, parseNamespacePattern(ch));
        conn.sendControl(subscriptionFrame('unsubscribed', frame.channels, frame.id));
        return;
    }
  }
}
