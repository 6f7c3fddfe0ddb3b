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
  const channel = recordChannel(m, fromUsersTopic);
  if (channel === null) return null;
  return {
    channel,
    id: eventId(headerBytes(m.headers, HEADER_ID), partition, Number(m.offset)),
    publishedAt: recordPublishedAt(m),
    dataJson: eventData(m.value),
  };
}

/** The channel of a consumed record (`fanout-channel`, else from the key), or null when it has none. */
export function recordChannel(m: Pick<KafkaMessage, 'headers' | 'key'>, fromUsersTopic: boolean): string | null {
  const channel = header(m.headers, HEADER_CHANNEL);
  if (channel !== undefined) return channel;
  const key = m.key?.toString();
  if (!key) return null;
  return fromUsersTopic ? `${USER_NAMESPACE}:${key}` : key;
}

/** The first value of a header as it came (bytes from a consumer), or undefined. */
export function headerBytes(h: IHeaders | undefined, name: string): Buffer | string | undefined {
  const v = h?.[name];
  return Array.isArray(v) ? v[0] : v;
}

/** An event's id from its `fanout-id` header as it came, else `<partition>-<offset>`. */
export function eventId(id: Buffer | string | undefined | null, partition: number, offset: number): string {
  return id === undefined || id === null ? `${partition}-${offset}` : id.toString();
}

/**
 * An event's data as JSON text, from a record value as it came: the value itself when it is one
 * JSON value (checked once per record per gateway, whatever the content-type says: a malformed
 * value must not reach subscribers as a broken frame; checked without building the value), else
 * the value as a JSON string; `null` for no value.
 */
export function eventData(value: Buffer | string | null): string {
  if (value === null) return 'null';
  const raw = value.toString();
  return isValidJson(raw) ? raw : JSON.stringify(raw);
}

/** The publish time of a consumed record (ms): `fanout-ts`, else the record timestamp; now if neither is a number. */
export function recordPublishedAt(m: Pick<KafkaMessage, 'headers' | 'timestamp'>): number {
  const ts = headerBytes(m.headers, HEADER_TS);
  const n = ts === undefined ? Number(m.timestamp) : typeof ts === 'string' ? Number(ts) : decimalBytes(ts);
  return Number.isFinite(n) ? n : Date.now();
}

/** A Buffer of 1-15 ASCII digits as a number (what Number(text) gives), without making the text; else Number(text). */
function decimalBytes(b: Buffer): number {
  const n = b.length;
  if (n === 0 || n > 15) return Number(b.toString());
  let v = 0;
  for (let i = 0; i < n; i++) {
    const d = b[i]! - 0x30;
    if (d < 0 || d > 9) return Number(b.toString());
    v = v * 10 + d;
  }
  return v;
}

/**
 * A consumed record as an IncomingEvent decoded on demand: the channel at once, the id, publish
 * time and data when first read, then kept. A gateway keeps most broadcast records only as bytes
 * in its windows (`rawId`, `rawValue`), and never needs them as text.
 */
export class RecordEvent implements IncomingEvent {
  private idText: string | undefined;
  private data: string | undefined;
  private ts: number | undefined;

  constructor(
    readonly channel: string,
    readonly message: KafkaMessage,
    readonly partition: number,
    readonly offset: number,
  ) {}

  get id(): string {
    return (this.idText ??= eventId(this.rawId, this.partition, this.offset));
  }

  get publishedAt(): number {
    return (this.ts ??= recordPublishedAt(this.message));
  }

  get dataJson(): string {
    return (this.data ??= eventData(this.message.value));
  }

  /** The `fanout-id` header as it came (undefined: none). */
  get rawId(): Buffer | string | undefined {
    return headerBytes(this.message.headers, HEADER_ID);
  }

  /** The value as it came. */
  get rawValue(): Buffer | null {
    return this.message.value;
  }
}

/** `fromRecord`, decoding only the channel now (RecordEvent); null for a record with no usable channel. */
export function recordEvent(m: KafkaMessage, partition: number, offset: number, fromUsersTopic: boolean): RecordEvent | null {
  const channel = recordChannel(m, fromUsersTopic);
  return channel === null ? null : new RecordEvent(channel, m, partition, offset);
}
