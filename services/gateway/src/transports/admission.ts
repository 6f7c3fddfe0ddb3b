/**
 * Admission at a bounded rate: new WebSocket connections and SSE streams take a token from one
 * bucket (`ratePerS` tokens a second, up to `burst` saved). Over the rate, the transport answers
 * `503 overloaded` with `Retry-After`, and the wait it names is the refused client's slot in a
 * virtual queue paced at the rate, so a reconnect storm is admitted as fast as the gateway takes
 * it instead of knocking it over or coming back as a herd. The same queue paces clients while
 * the gateway is not ready yet (a restarted gateway's clients arrive before it has joined Kafka):
 * they come back at about the rate it will admit them at, rather than all at once, which would
 * overflow the listen socket's accept queue (uWS: 512) and leave the dropped ones to TCP's SYN
 * retransmission (1, 3, 7 s...).
 */
import { ERRORS, FanoutError } from '@fanout/protocol';
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import { clientAddress } from '@fanout/http-api';
import type { AddressLimits } from './address-limits.js';

export interface AdmissionOptions {
  /** Admissions per second; 0 admits everything. */
  ratePerS: number;
  /** Admissions that may happen at once after a quiet period. */
  burst: number;
  random?: () => number;
}

/** How long a refused request should wait, in ms (Retry-After rounds it up to whole seconds). */
export interface Refusal {
  retryAfterMs: number;
}

export class Admission {
  private tokens: number;
  private last = Date.now();
  /**
   * The end of the virtual queue of refused clients, in ms since the epoch: each refusal is given
   * the next free slot, one every 1000 / rate ms, so the refused come back at the rate they can
   * be admitted at (a queue that holds no connections). Idle, it falls back to now.
   */
  private queueEnd = 0;

  constructor(private readonly o: AdmissionOptions) {
    this.tokens = o.burst;
  }

  /** Takes a token; null when admitted, else how long to wait. */
  admit(now = Date.now()): Refusal | null {
    const { ratePerS, burst } = this.o;
    if (ratePerS <= 0) return null;
    this.tokens = Math.min(burst, this.tokens + ((now - this.last) * ratePerS) / 1000);
    this.last = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return null;
    }
    return this.refuse(now);
  }

  /**
   * Refuses without taking a token (also while the gateway is starting or draining), naming the
   * next slot of the virtual queue, at least `minWaitMs` away, with up to SLOT_JITTER of jitter.
   */
  refuse(now = Date.now(), minWaitMs = 0): Refusal {
    const rate = this.o.ratePerS > 0 ? this.o.ratePerS : DEFAULT_QUEUE_RATE;
    // Behind everyone refused before, and no sooner than the next token is due.
    const untilToken = this.tokens >= 1 ? 0 : ((1 - this.tokens) * 1000) / rate;
    this.queueEnd = Math.min(now + MAX_WAIT_MS, Math.max(now + Math.max(minWaitMs, untilToken, MIN_WAIT_MS), this.queueEnd) + 1000 / rate);
    const wait = this.queueEnd - now;
    const retryAfterMs = Math.round(wait * (1 - SLOT_JITTER / 2 + (this.o.random ?? Math.random)() * SLOT_JITTER));
    return { retryAfterMs };
  }
}

/**
 * The shortest wait named to a client refused because the gateway is not ready, in ms: starting
 * takes seconds (Kafka group joins, warm-up), so asking sooner only costs both sides a connection.
 */
export const NOT_READY_MIN_WAIT_MS = 1000;
/** The shortest wait a refusal names, in ms: sooner, a client only costs both sides another connection. */
const MIN_WAIT_MS = 200;
/** The longest wait a refusal names, in ms (the queue does not grow past it). */
const MAX_WAIT_MS = 60_000;
/** Relative jitter around a slot (0.2: +-10%), so that neighbours in the queue do not collide. */
const SLOT_JITTER = 0.2;
/** The rate refusals are queued at when admission itself is off (ratePerS 0), per second. */
const DEFAULT_QUEUE_RATE = 2000;

/** The error a refused request gets (503 overloaded; Reply turns retry_after_ms into Retry-After). */
export function overloaded(r: Refusal): FanoutError {
  return new FanoutError('overloaded', `${ERRORS.overloaded.message} Retry in ${r.retryAfterMs} ms.`, {
    detail: { retry_after_ms: r.retryAfterMs },
  });
}

/** Whole seconds for a Retry-After header (503 and 429 answers): from the error's retry_after_ms, else 1. */
export function retryAfterSeconds(err: FanoutError): number {
  const ms = (err.detail as { retry_after_ms?: unknown } | undefined)?.retry_after_ms;
  return typeof ms === 'number' && ms > 0 ? Math.ceil(ms / 1000) : 1;
}

/**
 * The one check every transport makes before serving something new: `connect` (a WebSocket upgrade,
 * an SSE stream) is refused while the gateway is not accepting (starting, draining) or over the
 * admission rate; `request` (a poll, a history read) only while it is not accepting. A refusal is a
 * 503 whose wait comes from the admission queue, counted by reason. Before the shared rate, the
 * client's address is held to its own limits (address-limits.ts: a 429); `holds` says the
 * connection or request stays open (it counts against the address's open connections).
 */
export interface Gate {
  check(kind: 'connect' | 'request', address: string, holds?: boolean): FanoutError | null;
  /** The client's address (the socket's, or the trusted proxy header's); read it before any await. */
  address(res: HttpResponse, req: HttpRequest): string;
  /** A connection from `address` is open now / has ended (its address's open connections). */
  hold(address: string): void;
  release(address: string): void;
}

export function admissionGate(o: {
  admission: Admission;
  accepting(): boolean;
  limits?: AddressLimits;
  addressHeader?: string;
  onRefused?(reason: 'not_ready' | 'overloaded'): void;
}): Gate {
  const header = (o.addressHeader ?? '').toLowerCase();
  return {
    address: (res, req) =>
      clientAddress(Buffer.from(res.getRemoteAddressAsText()).toString(), header, header ? req.getHeader(header) : null),
    hold: (address) => o.limits?.hold(address),
    release: (address) => o.limits?.release(address),
    check: (kind, address, holds = kind === 'connect') => check(kind, address, holds),
  };
  function check(kind: 'connect' | 'request', address: string, holds: boolean): FanoutError | null {
    if (!o.accepting()) {
      o.onRefused?.('not_ready');
      return new FanoutError('not_ready', undefined, {
        detail: { retry_after_ms: o.admission.refuse(Date.now(), NOT_READY_MIN_WAIT_MS).retryAfterMs },
      });
    }
    const limited = o.limits?.check(address, holds);
    if (limited) return limited;
    if (kind === 'request') return null;
    const refusal = o.admission.admit();
    if (!refusal) return null;
    o.onRefused?.('overloaded');
    return overloaded(refusal);
  }
}
