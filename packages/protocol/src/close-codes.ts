/**
 * WebSocket close codes, in two documented ranges (after centrifuge's disconnect.go):
 *
 * - 4000-4499: the client should reconnect (with backoff and jitter) and resume from its positions.
 * - 4500-4999: the client should not reconnect without changing something (credentials, code).
 *
 * This module is the one home of every close code, its label and its reconnect advice: the
 * gateway's metrics label (`closeLabel`) and the SDK's copy (packages/client/src/protocol.ts,
 * checked equal by packages/client/test/protocol-parity.test.ts) derive from it. The table is
 * repeated in docs/protocol.md; keep both in step.
 *
 * Each entry: `code`; `reason`, the text of the close frame; `label`, a stable snake_case name
 * (the `reason` label of fanout_gateway_connections_closed_total, and the SDK's error code for the
 * codes that stop it); `reconnect`, the advice: true to reconnect and resume, false to change
 * something first.
 */
export const CLOSE = {
  /** The gateway is shutting down (deploy, scale-in). Reconnect after the delay in the reconnect frame. */
  SERVICE_RESTART: { code: 4000, reason: 'service restart', label: 'service_restart', reconnect: true },
  /** The connection could not keep up and its queue overflowed. Reconnect and resume. */
  SLOW_CONSUMER: { code: 4001, reason: 'slow consumer', label: 'slow_consumer', reconnect: true },
  /** The partition owning this connection's user moved to another gateway. Ask the router, reconnect. */
  REBALANCE: { code: 4002, reason: 'rebalance', label: 'rebalance', reconnect: true },
  /** The server could not check the connect token just now (its key set is unreachable). Reconnect after a backoff. */
  TRY_AGAIN: { code: 4003, reason: 'try again', label: 'try_again', reconnect: true },
  /** Too many protocol errors in a short time. Fix the client before reconnecting. */
  PROTOCOL_VIOLATION: { code: 4500, reason: 'protocol violation', label: 'protocol_violation', reconnect: false },
  /** The connect token is missing, invalid or expired. Get a new token first. */
  UNAUTHORIZED: { code: 4501, reason: 'unauthorized', label: 'unauthorized', reconnect: false },
} as const;

/**
 * The RFC 6455 (7.4.1) codes the gateway sends for frames it cannot take at all; they say the
 * client sent something it must not (a reconnect only helps once the client stops sending it).
 * Also in docs/protocol.md. They have no label of their own: metrics count them as `other`.
 */
export const CLOSE_RFC = {
  /** A binary message: the protocol has text (JSON) frames only. */
  UNSUPPORTED_DATA: { code: 1003, reason: 'binary frames are not accepted' },
  /** A text message that is not UTF-8. */
  INVALID_PAYLOAD: { code: 1007, reason: 'text frame is not valid UTF-8' },
  /** A message over the gateway's FANOUT_MAX_PAYLOAD_BYTES. */
  MESSAGE_TOO_BIG: { code: 1009, reason: 'message too big' },
} as const;

/**
 * RFC 6455 codes a connection ends with that the gateway does not choose (the client closed, the
 * peer went away, no close frame at all), with their labels. All three: reconnect with backoff.
 */
export const CLOSE_PEER = {
  /** The client closed the connection (or the gateway, answering a reconnect). */
  NORMAL: { code: 1000, label: 'normal' },
  /** A browser left the page, or an endpoint is going down. */
  GOING_AWAY: { code: 1001, label: 'going_away' },
  /** No close frame: the network failed, the idle timeout reaped the socket, or uWebSockets.js refused a frame. */
  ABNORMAL: { code: 1006, label: 'abnormal' },
} as const;

/** The label of a code not in CLOSE or CLOSE_PEER. */
export const OTHER_CLOSE_LABEL = 'other';

const LABELS: ReadonlyMap<number, string> = new Map([...Object.values(CLOSE), ...Object.values(CLOSE_PEER)].map((c) => [c.code, c.label]));

/** The label of a close code (CLOSE, CLOSE_PEER), else `other`: a bounded set, fit for a metric label. */
export function closeLabel(code: number): string {
  return LABELS.get(code) ?? OTHER_CLOSE_LABEL;
}

export function shouldReconnect(code: number): boolean {
  return code < 4000 || (code >= 4000 && code < 4500);
}
