/**
 * The messages between bench/rebalance.ts and its client workers (bench/rebalance-worker.ts), over
 * the IPC channel of `child_process.fork`. Requests are answered in order; `progress` arrives on its
 * own every 250 ms.
 */

export type ToWorker =
  /** Create one FanoutClient per user and connect them, at most `parallel` still waiting for their first `subscribed` at a time. */
  | {
      op: 'start';
      users: string[];
      routerUrl: string;
      region: string;
      tokenSecret: string;
      parallel: number;
      deadline: number;
      instances: Record<string, string>;
    }
  /** A gateway instance was (re)started under `node`: welcomes from that node now come from `instance`. */
  | { op: 'instance'; node: string; instance: string }
  | { op: 'results' }
  | { op: 'close' };

export interface Progress {
  clients: number;
  /** Clients whose first subscription was confirmed (initial connect). */
  started: number;
  /** Clients subscribed now and not in a disruption. */
  subscribed: number;
  /** Clients between losing their connection (or a reconnect frame) and being subscribed again. */
  disrupted: number;
  /** Clients that received at least one message. */
  withMessage: number;
  /** Messages the app received (after the SDK's de-duplication). */
  received: number;
  /** Clients that received their final sentinel. */
  sentinels: number;
}

/** One disruption of one client: from losing the connection (or a reconnect frame) to `subscribed` again. */
export interface Disruption {
  user: string;
  /** ms since the epoch. */
  start: number;
  /** ms since the epoch; null when the client was not subscribed again by the time results were asked. */
  end: number | null;
  /** What started it: `reconnect:<reason>` (a reconnect frame) or `close:<code>` (the connection ended first). */
  cause: string;
  /** Gateway instance (`<node>#<instance>`) the client was subscribed on before, and after. */
  from: string | null;
  to: string | null;
  /** Connection attempts the SDK made during the disruption. */
  attempts: number;
  /** What the SDK reported during the disruption, in order, with ms since its start (the first 10 and last 14 entries). */
  trail: string[];
}

export interface UserResult {
  user: string;
  /** counts[seq] = how many times the app received the event with that sequence number. */
  counts: number[];
  /** Sequence number of the final sentinel received, or -1. */
  sentinel: number;
  /** Messages received with a sequence number lower than one already received. */
  outOfOrder: number;
}

export interface WorkerCounters {
  /** SDK `error` events by code (fatal ones also under `fatal:<code>`). */
  errors: Record<string, number>;
  /** SDK `disconnect` events by close code. */
  closeCodes: Record<string, number>;
  /** `reconnect` frames by reason. */
  reconnects: Record<string, number>;
  /** `reset` events by reason (the gateway could not resume: events may be missing). */
  resets: Record<string, number>;
  gaps: number;
  /** Connection attempts (SDK `attempt` events), initial ones included. */
  attempts: number;
  /** Messages the SDK dropped as already delivered (resume overlap), summed over clients. */
  sdkDuplicates: number;
  /** Clients that stopped for good (a terminal close code). */
  stopped: number;
  /** `welcome` frames by transport (websocket, sse), initial ones included. */
  welcomes: Record<string, number>;
  /** Clients by the transport of their last connection. */
  finalTransports: Record<string, number>;
}

/** Counters of a worker before anything happened. */
export function emptyCounters(): WorkerCounters {
  return {
    errors: {},
    closeCodes: {},
    reconnects: {},
    resets: {},
    gaps: 0,
    attempts: 0,
    sdkDuplicates: 0,
    stopped: 0,
    welcomes: {},
    finalTransports: {},
  };
}

export type FromWorker =
  | { op: 'progress'; progress: Progress }
  | { op: 'started'; started: number; ms: number }
  | { op: 'results'; users: UserResult[]; disruptions: Disruption[]; counters: WorkerCounters }
  | { op: 'ok' }
  | { op: 'error'; message: string };
