/** The reconnect decision on its own: how a connection ended in, what the client does next out. No sockets. */
import { describe, expect, it } from 'vitest';
import { decideAfterLoss, MAX_SERVER_DELAY_MS, type Loss } from '../src/reconnect-decision.js';
import type { TransportClose } from '../src/transports.js';

const half = () => 0.5;

function decide(close: Partial<TransportClose> & { code: number }, rest: Partial<Omit<Loss, 'close'>> = {}) {
  return decideAfterLoss(
    { close: { reason: '', opened: true, ...close }, transport: 'websocket', authError: null, routed: false, ...rest },
    half,
  );
}

describe('reconnect decision', () => {
  it('reconnects after the backoff when an open connection drops', () => {
    expect(decide({ code: 1006 })).toEqual({
      giveUp: null,
      delayMs: undefined,
      retryReason: undefined,
      transportFailed: false,
      askRouter: false,
      resumeLost: undefined,
      sseMissing: false,
      notice: undefined,
    });
    for (const code of [1000, 1001, 1003, 1009, 4000, 4001, 4003, 4499]) expect(decide({ code }).giveUp, String(code)).toBeNull();
  });

  it('counts an attempt that never opened against its transport, and asks the router again when there is one', () => {
    expect(decide({ code: 1006, opened: false })).toMatchObject({ transportFailed: true, askRouter: false, delayMs: undefined });
    expect(decide({ code: 1006, opened: false }, { routed: true })).toMatchObject({ transportFailed: true, askRouter: true });
    // A WebSocket refused with a status: a proxy's, so a WebSocket failure like any other.
    expect(decide({ code: 1006, opened: false, httpStatus: 401 })).toMatchObject({ giveUp: null, transportFailed: true });
  });

  it('gives up on close codes 4500-4999, named by the code or by the token error before it', () => {
    expect(decide({ code: 4500, reason: 'protocol violation' }).giveUp).toEqual({
      code: 'protocol_violation',
      message: 'protocol violation',
    });
    expect(decide({ code: 4501 }).giveUp).toEqual({ code: 'unauthorized', message: 'closed with code 4501' });
    expect(decide({ code: 4777 }).giveUp).toEqual({ code: 'closed_by_server', message: 'closed with code 4777' });
    expect(
      decide({ code: 4501, reason: 'unauthorized' }, { authError: { code: 'token_expired', message: 'the token expired' } }).giveUp,
    ).toEqual({ code: 'token_expired', message: 'the token expired' });
  });

  it('waits what a reconnect frame asked, without giving up', () => {
    expect(decide({ code: 1000, reason: 'gateway asked to reconnect (shutdown)' }, { serverDelayMs: 3000 })).toMatchObject({
      giveUp: null,
      delayMs: 3000,
      transportFailed: false,
    });
  });

  it('asks the router after close 4002 (rebalance)', () => {
    expect(decide({ code: 4002 })).toMatchObject({ giveUp: null, askRouter: true, delayMs: undefined });
  });

  it('waits a Retry-After refusal plus up to 10%, capped, without counting it against the transport', () => {
    const refused = {
      code: 1006,
      opened: false,
      httpStatus: 503,
      retryAfterMs: 2000,
      error: { code: 'overloaded', message: 'over the rate' },
    };
    expect(decide(refused, { routed: true })).toMatchObject({
      delayMs: 2100,
      retryReason: 'overloaded',
      transportFailed: false,
      askRouter: false,
    });
    expect(decide({ ...refused, error: undefined }).retryReason).toBe('retry_after');
    expect(decide({ ...refused, retryAfterMs: 60 * 60_000 }).delayMs).toBe(MAX_SERVER_DELAY_MS);
    expect(decideAfterLoss({ close: { ...refused, reason: '' }, transport: 'sse', authError: null, routed: false }, () => 0).delayMs).toBe(
      2000,
    );
  });

  it('asks the router after not_ready only when it has one', () => {
    const notReady = { code: 1006, opened: false, httpStatus: 503, retryAfterMs: 500, error: { code: 'not_ready', message: 'draining' } };
    expect(decide(notReady, { routed: true }).askRouter).toBe(true);
    expect(decide(notReady, { routed: false }).askRouter).toBe(false);
  });

  describe('a refused SSE stream', () => {
    const sse = (httpStatus: number, error?: { code: string; message: string }) =>
      decide({ code: 1006, opened: false, reason: 'refused', httpStatus, ...(error ? { error } : {}) }, { transport: 'sse', routed: true });

    it('restarts live at once when the cursor cannot be resumed', () => {
      expect(sse(410)).toMatchObject({ giveUp: null, resumeLost: 'cursor_expired', delayMs: 0, transportFailed: false, askRouter: false });
      expect(sse(400, { code: 'invalid_position', message: 'not a position' })).toMatchObject({
        giveUp: null,
        resumeLost: 'invalid_position',
        delayMs: 0,
      });
    });

    it('gives up on 400, 401 and 403', () => {
      expect(sse(401, { code: 'token_expired', message: 'expired' }).giveUp).toEqual({ code: 'token_expired', message: 'expired' });
      expect(sse(403).giveUp).toEqual({ code: 'sse_refused', message: 'refused' });
      expect(sse(400).giveUp).toEqual({ code: 'sse_refused', message: 'refused' });
    });

    it('goes back to WebSocket on 404', () => {
      expect(sse(404)).toMatchObject({ giveUp: null, sseMissing: true, transportFailed: false, askRouter: false });
    });

    it('asks the router after wrong_gateway and says so', () => {
      expect(sse(409, { code: 'wrong_gateway', message: 'ask the router' })).toMatchObject({
        giveUp: null,
        askRouter: true,
        transportFailed: false,
        notice: { code: 'wrong_gateway', message: 'ask the router' },
      });
    });

    it('counts any other status against SSE', () => {
      expect(sse(502)).toMatchObject({ giveUp: null, transportFailed: true, askRouter: true, delayMs: undefined });
    });
  });
});
