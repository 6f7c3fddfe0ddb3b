/**
 * WebSocket close codes, in two documented ranges (after centrifuge's disconnect.go):
 *
 * - 4000-4499: the client should reconnect (with backoff and jitter) and resume from its positions.
 * - 4500-4999: the client should not reconnect without changing something (credentials, code).
 *
 * The table is repeated in docs/protocol.md; keep both in step.
 */
export const CLOSE = {
  /** The gateway is shutting down (deploy, scale-in). Reconnect after the delay in the reconnect frame. */
  SERVICE_RESTART: { code: 4000, reason: 'service restart', reconnect: true },
  /** The connection could not keep up and its queue overflowed. Reconnect and resume. */
  SLOW_CONSUMER: { code: 4001, reason: 'slow consumer', reconnect: true },
  /** The partition owning this connection's user moved to another gateway. Ask the router, reconnect. */
  REBALANCE: { code: 4002, reason: 'rebalance', reconnect: true },
  /** The server could not check the connect token just now (its key set is unreachable). Reconnect after a backoff. */
  TRY_AGAIN: { code: 4003, reason: 'try again', reconnect: true },
  /** Too many protocol errors in a short time. Fix the client before reconnecting. */
  PROTOCOL_VIOLATION: { code: 4500, reason: 'protocol violation', reconnect: false },
  /** The connect token is missing, invalid or expired. Get a new token first. */
  UNAUTHORIZED: { code: 4501, reason: 'unauthorized', reconnect: false },
} as const;

/**
 * The RFC 6455 (7.4.1) codes the gateway sends for frames it cannot take at all; they say the
 * client sent something it must not (a reconnect only helps once the client stops sending it).
 * Also in docs/protocol.md.
 */
export const CLOSE_RFC = {
  /** A binary message: the protocol has text (JSON) frames only. */
  UNSUPPORTED_DATA: { code: 1003, reason: 'binary frames are not accepted' },
  /** A text message that is not UTF-8. */
  INVALID_PAYLOAD: { code: 1007, reason: 'text frame is not valid UTF-8' },
  /** A message over the gateway's FANOUT_MAX_PAYLOAD_BYTES. */
  MESSAGE_TOO_BIG: { code: 1009, reason: 'message too big' },
} as const;

export function shouldReconnect(code: number): boolean {
  return code < 4000 || (code >= 4000 && code < 4500);
}
