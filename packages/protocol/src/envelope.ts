/**
 * The message envelope, the same in every transport:
 * `{"t":"msg","ch":<channel>,"id":<event id>,"pos":<position>,"ts":<publish time, ms>,"data":<JSON>}`.
 *
 * Built once per message per gateway (the hot path writes the same bytes to every subscriber), by
 * splicing the record value, which is already JSON, into the envelope without parsing it.
 */
export interface EnvelopeParts {
  channel: string;
  eventId: string;
  position: string;
  publishedAt: number;
  /** The event data as JSON text. */
  dataJson: string;
}

export function encodeEnvelope(m: EnvelopeParts): string {
  // channel and eventId are JSON-escaped: a record written straight to Kafka by another client may
  // carry anything. The position is built by the gateway from numbers and the epoch grammar.
  return `{"t":"msg","ch":${JSON.stringify(m.channel)},"id":${JSON.stringify(m.eventId)},"pos":"${m.position}","ts":${m.publishedAt},"data":${m.dataJson}}`;
}
