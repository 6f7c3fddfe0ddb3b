/** Messages between bench/connections.ts and bench/connections-worker.ts (IPC). */

/** What one worker's clients have done so far. */
export interface ConnTotals {
  clients: number;
  /** Clients subscribed and still open. */
  open: number;
  /** Handshakes refused with 503 overloaded / not_ready (retried after Retry-After, as the SDK does). */
  refused503: number;
  /** Other HTTP refusals (not retried). */
  refusedOther: number;
  /** Attempts that got no HTTP answer, by reason (ECONNREFUSED, handshake timed out...); retried with backoff. */
  netFailures: Record<string, number>;
  /** Clients that gave up (attempts exhausted or a refusal that is not retried). */
  gaveUp: number;
  /** Connections closed after subscribing, by close code (heartbeat failures show as 1006). */
  closes: Record<string, number>;
  /** `{"op":"ping"}` frames sent (the SDK's liveness check) and `pong` frames received. */
  appPings: number;
  pongs: number;
  /** WebSocket pings from the gateway (answered with a pong by the client). */
  wsPings: number;
  /** Clients quiet for over 1.5 heartbeats (the SDK would call the connection lost). */
  silent: number;
}

/** All counts at zero (a worker's start, and the sum over workers). */
export function emptyTotals(): ConnTotals {
  return {
    clients: 0,
    open: 0,
    refused503: 0,
    refusedOther: 0,
    netFailures: {},
    gaveUp: 0,
    closes: {},
    appPings: 0,
    pongs: 0,
    wsPings: 0,
    silent: 0,
  };
}

export type ConnToWorker =
  | { op: 'connect'; url: string; channel: string; n: number; sources: string[]; parallel: number; timeoutMs: number }
  | { op: 'totals' }
  | { op: 'arm' }
  | { op: 'await-broadcast'; timeoutMs: number }
  | { op: 'close' };

export type ConnFromWorker =
  | { op: 'progress'; subscribed: number }
  | { op: 'ok' }
  /** All of this worker's clients subscribed (or the timeout): when the first started and the last subscribed (ms since the epoch). */
  | { op: 'connected'; firstAt: number; lastAt: number | null; pending: number; totals: ConnTotals }
  | { op: 'totals'; totals: ConnTotals }
  /** The broadcast since `arm`: clients that got it, the first and the last receipt (ms since the epoch, fractional). */
  | { op: 'broadcast'; received: number; expected: number; firstAt: number | null; lastAt: number | null }
  | { op: 'error'; message: string };
