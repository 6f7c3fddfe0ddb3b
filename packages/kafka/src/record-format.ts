/**
 * The Kafka record format. Any Kafka client can publish by writing records like these; the
 * gateways and the dispatcher read nothing else. docs/kafka.md documents it for other languages.
 *
 * - topic: the broadcast topic for every channel outside the `user` namespace, the users topic for
 *   `user:<id>` channels.
 * - key: the channel name (broadcast) or the user id (users topic), so one channel (or one user)
 *   stays on one partition and keeps its order. The partition is Kafka's default partitioner of
 *   the key (murmur2), which this project computes itself so that it can report positions.
 * - value: the event data as UTF-8 JSON.
 * - headers: `fanout-id` (event id), `fanout-channel` (channel name), `fanout-ts` (publish time,
 *   milliseconds since the Unix epoch, decimal), `content-type` (`application/json`).
 *
 * A users-topic record on a partition other than its key's (a producer with another partitioner,
 * or an explicit partition) is forwarded by the gateway that reads it: a copy on the key's
 * partition carries `fanout-forwarded-from` (`<partition>:<offset>` of the original) and
 * `fanout-forwarded-region` (the region whose gateway wrote it). See
 * services/gateway/src/kafka/misrouted.ts and docs/kafka.md.
 */
import type { IHeaders, KafkaMessage } from 'kafkajs';
import { isUserChannel, isValidJson, USER_NAMESPACE } from '@fanout/protocol';

export const HEADER_ID = 'fanout-id';
export const HEADER_CHANNEL = 'fanout-channel';
export const HEADER_TS = 'fanout-ts';
export const HEADER_CONTENT_TYPE = 'content-type';
export const JSON_CONTENT_TYPE = 'application/json';
/** On a forwarded copy of a misrouted users-topic record: the original's `<partition>:<offset>`. */
export const HEADER_FORWARDED_FROM = 'fanout-forwarded-from';
/** On a forwarded copy: the region whose gateway wrote it (each region delivers only its own copies). */
export const HEADER_FORWARDED_REGION = 'fanout-forwarded-region';

export interface Topics {
  /** Broadcast channels; every gateway reads every partition. */
  broadcast: string;
  /** User channels, keyed by user id; read by each region's consumer group. */
  users: string;
}

export const DEFAULT_TOPICS: Topics = { broadcast: 'fanout.broadcast', users: 'fanout.users' };

export function topicFor(channel: string, topics: Topics): string {
  return isUserChannel(channel) ? topics.users : topics.broadcast;
}

/** The record key: the user id for `user:<id>`, else the channel itself. */
export function keyFor(channel: string): string {
  return isUserChannel(channel) ? channel.slice(USER_NAMESPACE.length + 1) : channel;
}

export interface OutgoingRecord {
  key: string;
  value: string;
  headers: IHeaders;
  timestamp: string;
}

export function toRecord(e: { channel: string; id: string; dataJson: string }, publishedAt: number): OutgoingRecord {
  const ts = String(publishedAt);
  return {
    key: keyFor(e.channel),
    value: e.dataJson,
    timestamp: ts,
    headers: {
      [HEADER_ID]: e.id,
      [HEADER_CHANNEL]: e.channel,
      [HEADER_TS]: ts,
      [HEADER_CONTENT_TYPE]: JSON_CONTENT_TYPE,
    },
  };
}

export interface IncomingEvent {
  channel: string;
  id: string;
  publishedAt: number;
  /** The data as JSON text, ready to splice into an envelope. */
  dataJson: string;
}

/** The first value of a header as text, or undefined. */
export function header(h: IHeaders | undefined, name: string): string | undefined {
  const v = h?.[name];
  if (v === undefined) return undefined;
  const one = Array.isArray(v) ? v[0] : v;
  return one === undefined ? undefined : one.toString();
}

/**
 * Whether a users-topic record is a gateway's forwarded copy of a misrouted record (the original
 * was read too: a reader that does not care about partitions, like the webhook dispatcher, skips
 * copies to see each event once).
 */
export function isForwardedCopy(m: Pick<KafkaMessage, 'headers'>): boolean {
  return header(m.headers, HEADER_FORWARDED_FROM) !== undefined;
}

/**
 * Reads a consumed record back into an event. Records written by other clients are accepted
 * leniently: without `fanout-channel` the channel comes from the key (broadcast topic) or is
 * `user:<key>` (users topic); without `fanout-id` the id is `<partition>-<offset>`; without
 * `fanout-ts` the record timestamp is used; a value that is not valid JSON (whatever its
 * content-type) is delivered as a JSON string.
 * Returns null for a record with no usable channel (it is skipped and counted).
 */
export function fromRecord(m: KafkaMessage, partition: number, fromUsersTopic: boolean): IncomingEvent | null {
  const h = m.headers;
  let channel = header(h, HEADER_CHANNEL);
  if (channel === undefined) {
    const key = m.key?.toString();
    if (!key) return null;
    channel = fromUsersTopic ? `${USER_NAMESPACE}:${key}` : key;
  }
  const id = header(h, HEADER_ID) ?? `${partition}-${m.offset}`;
  const ts = Number(header(h, HEADER_TS) ?? m.timestamp);
  const raw = m.value === null ? 'null' : m.value.toString('utf8');
  // Checked once per record per gateway, whatever the content-type says: a malformed value must
  // not reach subscribers as a broken frame.
  // Checked without building the value (isValidJson accepts exactly what JSON.parse does).
  const dataJson = isValidJson(raw) ? raw : JSON.stringify(raw);
  return { channel, id, publishedAt: Number.isFinite(ts) ? ts : Date.now(), dataJson };
}
