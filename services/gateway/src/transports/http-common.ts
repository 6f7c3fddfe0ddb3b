/**
 * What the HTTP transports (SSE, long polling, ETag polling) share: reading a uWS request before it
 * goes away, answering safely after an await (aborted responses are skipped, writes are corked),
 * authorizing a channel, and reading a channel's messages since a cursor.
 */
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import { ERRORS, FanoutError, isValidChannel, parsePosition, formatPosition, type ErrorCode } from '@fanout/protocol';
import { ANONYMOUS, type ChannelPermissions, type Principal, type TokenVerifier } from '@fanout/auth';
import { asFanoutError } from '@fanout/http-api';
import { statusLine } from '@fanout/observability';
import type { Outgoing, OutgoingFactory } from '../delivery/outgoing.js';
import type { Streams } from '../delivery/streams.js';
import { ReplayUnavailableError } from '../kafka/replay-reader.js';
import { retryAfterSeconds, type Gate } from './admission.js';

export interface PullDeps {
  streams: Streams;
  factory: OutgoingFactory;
  epoch: string;
  /** Says where a user channel's partition is served now, for wrong_gateway answers. */
  ownerHint(channel: string): string;
  replayMaxOffsets: number;
  permissions: ChannelPermissions;
  tokens: TokenVerifier;
  /** Starting, draining or over the admission rate: the 503 to answer with (admissionGate). */
  gate: Gate;
}

/** The parts of a request a handler needs, copied out synchronously (uWS reuses the request). */
export interface RequestInfo {
  query: URLSearchParams;
  token: string | null;
  ifNoneMatch: string;
  lastEventId: string;
}

export function readRequest(req: HttpRequest): RequestInfo {
  const query = new URLSearchParams(req.getQuery() ?? '');
  const auth = req.getHeader('authorization');
  return {
    query,
    token: query.get('token') || (auth.startsWith('Bearer ') ? auth.slice(7).trim() : null),
    ifNoneMatch: req.getHeader('if-none-match'),
    lastEventId: req.getHeader('last-event-id'),
  };
}

/** A response that may be answered later: tracks abort, and corks every write. */
export class Reply {
  aborted = false;
  done = false;
  private onAbort: (() => void) | null = null;
  private finishers: (() => void)[] = [];

  constructor(readonly res: HttpResponse) {
    res.onAborted(() => {
      this.aborted = true;
      this.onAbort?.();
      this.finish();
    });
  }

  whenAborted(fn: () => void): void {
    this.onAbort = fn;
  }

  /** Runs `fn` once, when the request is answered or aborted. */
  finally(fn: () => void): void {
    if (this.aborted || this.done) fn();
    else this.finishers.push(fn);
  }

  private finish(): void {
    const fns = this.finishers;
    this.finishers = [];
    for (const fn of fns) fn();
  }

  json(status: number, body: string, headers: Record<string, string> = {}): void {
    if (this.aborted || this.done) return;
    this.done = true;
    this.finish();
    this.res.cork(() => {
      // Pull endpoints are read by browser apps on other origins; auth is a token, not a cookie.
      this.res
        .writeStatus(statusLine(status))
        .writeHeader('content-type', 'application/json')
        .writeHeader('cache-control', 'no-cache')
        .writeHeader('access-control-allow-origin', '*')
        .writeHeader('access-control-expose-headers', 'etag, retry-after');
      for (const [k, v] of Object.entries(headers)) this.res.writeHeader(k, v);
      this.res.end(body);
    });
  }

  notModified(etag: string): void {
    if (this.aborted || this.done) return;
    this.done = true;
    this.finish();
    this.res.cork(() => {
      this.res
        .writeStatus('304 Not Modified')
        .writeHeader('etag', etag)
        .writeHeader('cache-control', 'no-cache')
        .writeHeader('access-control-allow-origin', '*')
        .endWithoutBody();
    });
  }

  error(err: unknown): void {
    const e = asFanoutError(err);
    // Retriable refusals (starting, draining, overloaded, rate limited, Kafka unavailable) say when to come back.
    this.json(
      e.status,
      JSON.stringify(e.toJSON()),
      e.status === 503 || e.status === 429 ? { 'retry-after': String(retryAfterSeconds(e)) } : {},
    );
  }
}

export function paramError(code: ErrorCode, message: string): FanoutError {
  return new FanoutError(code, message || ERRORS[code].message);
}

/** Verifies the token (if any) and checks that it may read every channel. */
export async function authorize(deps: PullDeps, token: string | null, channels: string[]): Promise<Principal> {
  let principal = ANONYMOUS;
  if (token) {
    if (!deps.tokens.enabled) throw new FanoutError('token_invalid', 'This gateway has no token keys configured; call it without a token.');
    principal = await deps.tokens.verify(token);
  }
  for (const ch of channels) {
    if (!deps.permissions.allows(principal, ch)) {
      throw new FanoutError(
        token ? 'forbidden_channel' : 'token_required',
        `Not allowed to read ${ch}${token ? '' : ' without a connect token'}.`,
      );
    }
  }
  return principal;
}

export function requireChannel(value: string | null): string {
  if (!value) throw paramError('invalid_parameter', 'The "channel" parameter is required.');
  if (!isValidChannel(value))
    throw paramError(
      'invalid_channel',
      `${JSON.stringify(String(value).slice(0, 80))} is not a channel name. ${ERRORS.invalid_channel.message}`,
    );
  return value;
}

/** One query parameter's value (null when absent); a parameter given twice is refused, not read as its first value. */
export function queryParam(query: URLSearchParams, name: string): string | null {
  const all = query.getAll(name);
  if (all.length > 1) throw paramError('invalid_parameter', `"${name}" is given ${all.length} times; give it once.`);
  return all[0] ?? null;
}

export function intParam(query: URLSearchParams, name: string, def: number, min: number, max: number): number {
  const raw = queryParam(query, name);
  if (raw === null || raw === '') return def;
  const n = Number(raw);
  if (!/^\d{1,9}$/.test(raw) || n < min || n > max)
    throw paramError('invalid_parameter', `"${name}" must be an integer from ${min} to ${max}.`);
  return n;
}

export interface Range {
  messages: Outgoing[];
  /** The cursor to continue from: the last message returned, or the partition's end when all were returned. */
  cursor: string;
}

/**
 * A channel's messages after `cursor` (null: from now, i.e. none, with the current end as cursor),
 * at most `limit`, from the window or, within the replay limit, from Kafka. Answers synchronously
 * when the window covers the cursor (so a caller can look and register a waiter in one turn).
 */
export function readSince(deps: PullDeps, channel: string, cursor: string | null, limit: number): Range | Promise<Range> {
  const stream = deps.streams.for(channel);
  const partition = deps.streams.partitionOf(channel);
  if (!stream.owns(partition)) throw new FanoutError('wrong_gateway', deps.ownerHint(channel));
  // A partition still loading its recent past: answer once it is in the window (a cursor in that
  // range would otherwise look ahead of this gateway and skip what the warm-up adds).
  if (stream.warmup.warming(partition))
    return new Promise((resolve, reject) =>
      stream.warmup.whenWarm(partition, () => {
        try {
          resolve(readSince(deps, channel, cursor, limit));
        } catch (err) {
          reject(err);
        }
      }),
    );
  const end = () => stream.windows.lastOffset(partition) ?? -1;
  if (cursor === null) return { messages: [], cursor: formatPosition({ epoch: deps.epoch, partition, offset: end() }) };
  const pos = parsePosition(cursor);
  if (!pos)
    throw paramError(
      'invalid_position',
      `${JSON.stringify(cursor.slice(0, 80))} is not a cursor; cursors are positions "<epoch>:<partition>:<offset>" as returned.`,
    );
  if (pos.epoch !== deps.epoch || pos.partition !== partition)
    throw new FanoutError(
      'cursor_expired',
      `The cursor belongs to another stream (epoch ${pos.epoch}, partition ${pos.partition}); fetch the current state and continue without a cursor.`,
    );
  const lastNow = end();
  // A cursor past what this gateway has read (another gateway was ahead): keep it, so the next
  // answer starts after it rather than repeating what the client has.
  if (pos.offset > lastNow) return { messages: [], cursor };
  const cover = stream.windows.since(channel, partition, pos.offset);
  const cut = (all: Outgoing[], upTo: number): Range => {
    if (all.length > limit) {
      const messages = all.slice(0, limit);
      return { messages, cursor: messages[messages.length - 1]!.position };
    }
    return { messages: all, cursor: formatPosition({ epoch: deps.epoch, partition, offset: Math.max(upTo, pos.offset) }) };
  };
  if (cover.kind === 'window') return cut(cover.messages, lastNow);
  if (cover.upTo - cover.after > deps.replayMaxOffsets) throw new FanoutError('cursor_expired');
  return stream.replay.read(partition, cover.after, cover.upTo, channel).then(
    (events) => {
      const now = Date.now();
      return cut(
        events.map((r) => deps.factory.make(r.event, partition, r.offset, now)),
        cover.upTo,
      );
    },
    (err: unknown) => {
      // Gone from Kafka (retention) is final; a failed or slow read is worth retrying.
      if (err instanceof ReplayUnavailableError && err.reason === 'beyond_retention')
        throw new FanoutError('cursor_expired', `The messages after this cursor are no longer in Kafka: ${err.message}.`);
      throw new FanoutError('replay_unavailable', `${ERRORS.replay_unavailable.message} (${(err as Error).message})`);
    },
  );
}

/** `{"messages":[<envelope>,...],"cursor":"..."}` without re-encoding the envelopes. */
export function rangeBody(r: Range): string {
  return `{"messages":[${r.messages.map((m) => m.json).join(',')}],"cursor":${JSON.stringify(r.cursor)}}`;
}
