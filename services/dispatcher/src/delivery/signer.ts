/**
 * The request a receiver gets, signed per Standard Webhooks with the official `standardwebhooks`
 * library: `webhook-id` (the event id, the receiver's idempotency key), `webhook-timestamp` (the
 * attempt's time, seconds) and `webhook-signature` (`v1,<base64 HMAC-SHA256>` per active secret,
 * space-separated, so a receiver holding either the old or the new secret verifies during a
 * rotation's overlap).
 */
import { Webhook } from 'standardwebhooks';
import type { WebhookEvent } from './delivery-job.js';

/** The payload type receivers see in `type`. */
export const EVENT_TYPE = 'fanout.event';

/**
 * The body: `{"type":"fanout.event","timestamp":<publish time, ISO 8601>,"id","channel","data"}`,
 * the data spliced in as published (it is JSON already).
 */
export function webhookBody(e: WebhookEvent): string {
  return `{"type":"${EVENT_TYPE}","timestamp":"${new Date(e.publishedAt).toISOString()}","id":${JSON.stringify(e.id)},"channel":${JSON.stringify(e.channel)},"data":${e.dataJson}}`;
}

/** Signers per secret (decoding a secret once, not per request); bounded by the endpoints' secrets. */
const signers = new Map<string, Webhook>();

function signer(secret: string): Webhook {
  let w = signers.get(secret);
  if (!w) {
    if (signers.size >= 50_000) signers.clear();
    w = new Webhook(secret);
    signers.set(secret, w);
  }
  return w;
}

export function signatureHeaders(secrets: readonly string[], msgId: string, at: Date, body: string): Record<string, string> {
  return {
    'webhook-id': msgId,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': secrets.map((s) => signer(s).sign(msgId, at, body)).join(' '),
  };
}
