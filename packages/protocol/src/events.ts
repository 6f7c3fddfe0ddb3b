/**
 * Validation of events submitted for publishing (HTTP API and producer library share it).
 */
import { randomUUID } from 'node:crypto';
import { FanoutError } from './errors.js';
import { isValidChannel } from './channels.js';

export interface EventInput {
  channel: string;
  data: unknown;
  id?: string;
}

export interface ValidEvent {
  channel: string;
  id: string;
  /** The data serialized once as JSON; this is the Kafka record value. */
  dataJson: string;
}

function detailOf(index: number | undefined): { detail?: unknown } {
  return index === undefined ? {} : { detail: { index } };
}

const EVENT_ID_RE = /^[A-Za-z0-9._:-]{1,128}$/;

/** Default limit for one event's data, in bytes of its JSON (64 KiB). */
export const DEFAULT_MAX_EVENT_BYTES = 64 * 1024;

export function validateEvent(input: unknown, maxEventBytes = DEFAULT_MAX_EVENT_BYTES, index?: number): ValidEvent {
  const where = index === undefined ? '' : ` (events[${index}])`;
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new FanoutError(
      'invalid_event',
      `The event${where} must be a JSON object: {"channel": "<namespace>:<name>", "data": <JSON>, "id"?: "<event id>"}.`,
      detailOf(index),
    );
  }
  const e = input as Record<string, unknown>;
  for (const k of Object.keys(e)) {
    if (k !== 'channel' && k !== 'data' && k !== 'id') {
      throw new FanoutError(
        'invalid_event',
        `Unknown field ${JSON.stringify(k.slice(0, 40))}${where}; an event has channel, data and optionally id.`,
        detailOf(index),
      );
    }
  }
  if (!isValidChannel(e.channel)) {
    throw new FanoutError(
      'invalid_channel',
      `${JSON.stringify(String(e.channel ?? '').slice(0, 80))}${where} is not a channel name. Channel names are "<namespace>:<name>": namespace [a-z][a-z0-9-]{0,31}, name [A-Za-z0-9._=@-]{1,200}.`,
      detailOf(index),
    );
  }
  if (!('data' in e) || e.data === undefined) {
    throw new FanoutError('invalid_event', `The event${where} has no "data"; send any JSON value (null included).`, detailOf(index));
  }
  let id: string;
  if (e.id === undefined) {
    id = randomUUID();
  } else if (typeof e.id === 'string' && EVENT_ID_RE.test(e.id)) {
    id = e.id;
  } else {
    throw new FanoutError('invalid_event_id', undefined, detailOf(index));
  }
  const dataJson = JSON.stringify(e.data);
  if (Buffer.byteLength(dataJson) > maxEventBytes) {
    throw new FanoutError(
      'payload_too_large',
      `The event's data${where} is ${Buffer.byteLength(dataJson)} bytes of JSON; the limit is ${maxEventBytes}.`,
      detailOf(index),
    );
  }
  return { channel: e.channel, id, dataJson };
}
