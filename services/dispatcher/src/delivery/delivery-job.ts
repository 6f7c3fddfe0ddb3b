/**
 * One delivery: one event to one endpoint, with how many attempts it has had. This is also the
 * value of a retry record (with its due time in the `fanout-due` header) and, with `dead_at` and
 * `reason`, of a dead-letter record. JSON with snake_case fields, `v: 1`:
 *
 * `{"v":1,"endpoint_id","event":{"id","channel","published_at","data_json"},"attempt","created_at","last":{"at","status"?,"error"?}}`
 */
export interface WebhookEvent {
  id: string;
  channel: string;
  /** Publish time, ms since the epoch. */
  publishedAt: number;
  /** The event data as JSON text, exactly as published. */
  dataJson: string;
}

export interface LastAttempt {
  at: number;
  /** HTTP status, when the endpoint answered. */
  status?: number;
  /** Why it failed: `http_<status>`, `timeout`, `network: <message>`, `forbidden_target`, a short body excerpt. */
  error?: string;
}

export interface DeliveryJob {
  endpointId: string;
  event: WebhookEvent;
  /** Attempts already made: 0 for a new event or a redrive. */
  attempt: number;
  /** When this delivery began (first read, or the redrive), ms since the epoch; deferrals end after the whole schedule. */
  createdAt: number;
  last?: LastAttempt;
}

export type DeadLetterReason = 'exhausted' | 'expired' | 'endpoint_disabled';

export interface DeadLetter extends DeliveryJob {
  deadAt: number;
  reason: DeadLetterReason;
}

/** Header of a retry record: when it is due, ms since the epoch (decimal). */
export const HEADER_DUE = 'fanout-due';
/** Header naming the endpoint of a retry or dead-letter record. */
export const HEADER_ENDPOINT = 'fanout-endpoint';

interface Wire {
  v: 1;
  endpoint_id: string;
  event: { id: string; channel: string; published_at: number; data_json: string };
  attempt: number;
  created_at: number;
  last?: LastAttempt;
  dead_at?: number;
  reason?: DeadLetterReason;
}

export function encodeJob(job: DeliveryJob | DeadLetter): string {
  const w: Wire = {
    v: 1,
    endpoint_id: job.endpointId,
    event: { id: job.event.id, channel: job.event.channel, published_at: job.event.publishedAt, data_json: job.event.dataJson },
    attempt: job.attempt,
    created_at: job.createdAt,
    ...(job.last ? { last: job.last } : {}),
    ...('deadAt' in job ? { dead_at: job.deadAt, reason: job.reason } : {}),
  };
  return JSON.stringify(w);
}

/** Reads a retry or dead-letter record; null if it is not one (it is skipped and counted). */
export function decodeJob(value: Buffer | null): DeliveryJob | DeadLetter | null {
  if (value === null) return null;
  try {
    const w = JSON.parse(value.toString('utf8')) as Wire;
    if (
      w.v !== 1 ||
      typeof w.endpoint_id !== 'string' ||
      typeof w.event?.id !== 'string' ||
      typeof w.event.channel !== 'string' ||
      typeof w.event.data_json !== 'string'
    )
      return null;
    if (!Number.isInteger(w.attempt) || w.attempt < 0 || !Number.isFinite(w.created_at)) return null;
    const job: DeliveryJob = {
      endpointId: w.endpoint_id,
      event: { id: w.event.id, channel: w.event.channel, publishedAt: Number(w.event.published_at) || 0, dataJson: w.event.data_json },
      attempt: w.attempt,
      createdAt: w.created_at,
      ...(w.last ? { last: w.last } : {}),
    };
    if (w.dead_at !== undefined) return { ...job, deadAt: w.dead_at, reason: w.reason ?? 'exhausted' };
    return job;
  } catch {
    return null;
  }
}

/** The dead-letter record key: one per endpoint and event, so a redrive's tombstone removes exactly it. */
export function deadLetterKey(endpointId: string, eventId: string): string {
  return `${endpointId}/${eventId}`;
}
