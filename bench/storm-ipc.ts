/** Messages between bench/reconnect-storm.ts and bench/storm-worker.ts (IPC). */
export interface WorkerTotals {
  clients: number;
  /** Messages received once, all clients. */
  unique: number;
  /** Messages received again (an offset at or before the client's last). */
  dups: number;
  resets: number;
  /** Handshakes answered with something other than 101, or failed sockets. */
  refusals: number;
  /** Attempts that got no HTTP answer, by reason (ECONNREFUSED, handshake timed out...). */
  netFailures: Record<string, number>;
  /** Per channel: messages received once, summed over its clients (final only). */
  perChannelUnique: Record<string, number>;
}

export type StormToWorker =
  | {
      op: 'connect';
      urls: string[];
      n: number;
      base: number;
      channels: string[];
      localAddress: string;
      spreadMs: number;
      timeoutMs: number;
    }
  | { op: 'mark' }
  | { op: 'drop'; positionless: boolean }
  | { op: 'await-resumed'; targets: Record<string, number>; timeoutMs: number }
  | { op: 'await-resubscribed'; timeoutMs: number }
  | { op: 'final'; targets: Record<string, number>; timeoutMs: number }
  | { op: 'close' };

export type StormFromWorker =
  | { op: 'ok' }
  | { op: 'connected'; lastAt: number | null; pending: number }
  | { op: 'resumed'; lastAt: number | null; pending: number; totals: WorkerTotals; times: number[]; trail: string[] }
  | { op: 'final'; pending: number; totals: WorkerTotals }
  | { op: 'error'; message: string };
