/** Messages between bench/webhooks.ts and its receiver worker, bench/webhooks-receivers.ts (IPC). */

/** Every request the receivers got since the last dump, column by column (same index = same request). */
export interface ReceivedRows {
  /** Endpoint index. */
  ep: number[];
  /** The webhook-id header (the event id). */
  id: string[];
  /** When the request arrived (headers parsed), ms since the epoch (performance.timeOrigin + now()). */
  start: number[];
  /** When its response was handed to the kernel ('finish'), same clock; -1 if it never was. */
  end: number[];
  /** The status it was answered with. */
  status: number[];
  /** Which arrival of this webhook-id at this endpoint it was (1 = the first attempt). */
  attempt: number[];
  /** When the request's connection was accepted, same clock (a connection older than a kill was the killed dispatcher's). */
  conn: number[];
  /** The event's publication time from the body's `timestamp` (ms since the epoch); NaN if unreadable. */
  pub: number[];
}

export interface ReceiverTotals {
  /** Distinct (endpoint, webhook-id) pairs answered 2xx, since the start. */
  pairs2xx: number;
  requests: number;
  /** Requests arrived and not answered yet. */
  open: number;
  /** When the last request arrived (ms since the epoch), 0 before any. */
  lastAt: number;
  /** Signatures checked that verified / that did not (or had no such header). */
  sigOk: number;
  sigFail: number;
}

export type ReceiversToWorker =
  /** Starts one HTTP server per secret on 127.0.0.1 (free ports); verifies every `verifyEvery`-th request. */
  | { op: 'start'; secrets: string[]; verifyEvery: number }
  /** Endpoints in `flaky` answer 500 to a first attempt with probability `failFraction`; all others 200. */
  | { op: 'mode'; failFraction: number; flaky: number[] }
  | { op: 'dump' }
  | { op: 'close' };

export type ReceiversFromWorker =
  | { op: 'started'; ports: number[] }
  | { op: 'ok' }
  | { op: 'dump'; rows: ReceivedRows; totals: ReceiverTotals }
  | { op: 'progress'; totals: ReceiverTotals }
  | { op: 'error'; message: string };
