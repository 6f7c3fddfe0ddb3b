/**
 * A position says where a message sits in its stream: `<epoch>:<partition>:<offset>`.
 *
 * The epoch names the incarnation of the stream (it changes if the topic is recreated, so offsets
 * from an older incarnation are never confused with new ones). Partition and offset are Kafka's.
 * Clients treat the string as an opaque cursor; it is also the SSE `id:`. An offset of -1 means
 * "before the first record" (a cursor on a partition that has none yet).
 */
export interface Position {
  epoch: string;
  partition: number;
  offset: number;
}

/** A stream epoch: 1 to 64 of [A-Za-z0-9_-] (FANOUT_STREAM_EPOCH; the first part of a position). */
const EPOCH = '[A-Za-z0-9_-]{1,64}';

/** The one definition of a valid epoch: the publisher's and the gateway's config check theirs with it. */
export const EPOCH_RE = new RegExp(`^${EPOCH}$`);

const POSITION_RE = new RegExp(`^(${EPOCH}):(\\d{1,6}):(-1|\\d{1,16})$`);

export function formatPosition(p: Position): string {
  return `${p.epoch}:${p.partition}:${p.offset}`;
}

export function parsePosition(s: unknown): Position | null {
  if (typeof s !== 'string') return null;
  const m = POSITION_RE.exec(s);
  if (!m) return null;
  const offset = Number(m[3]);
  if (!Number.isSafeInteger(offset)) return null;
  return { epoch: m[1]!, partition: Number(m[2]), offset };
}
