/** Messages between bench/ingest.ts and its workers (IPC): the bare consumer and the client processes. */

/** To bench/ingest-bare.ts. */
export type BareToWorker =
  /** Join a group of its own on `topic` and report `joined` once it owns every partition. */
  { op: 'start'; brokers: string[]; topic: string } | { op: 'count' } | { op: 'close' };

export type BareFromWorker =
  | { op: 'progress'; records: number }
  | { op: 'joined'; partitions: number }
  | { op: 'count'; records: number; batches: number }
  | { op: 'ok' }
  | { op: 'error'; message: string };

/** To bench/ingest-clients.ts: `n` connections, connection i subscribed to channels[i]. */
export type ClientsToWorker = { op: 'connect'; url: string; channels: string[][]; parallel: number } | { op: 'count' } | { op: 'close' };

export type ClientsFromWorker =
  | { op: 'progress'; received: number }
  | { op: 'connected'; connections: number; subscriptions: number }
  /** Messages received, messages announced lost in gap frames, connections closed by the server (by code). */
  | { op: 'count'; received: number; gapped: number; closes: Record<string, number> }
  | { op: 'ok' }
  | { op: 'error'; message: string };
