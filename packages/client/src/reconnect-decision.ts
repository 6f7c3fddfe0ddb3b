/**
 * What the client does when a connection ends, as a pure function of how it ended: give up, wait
 * what the gateway asked, restart a stream live, or fall back on its own backoff; and whether to
 * ask the router first. The client (client.ts, `lost`) applies the decision; the backoff delay
 * itself is drawn by backoff.ts when the client schedules the attempt.
 *
 * The rules, in order:
 * - a close code 4500-4999 stops the client (protocol.ts `isTerminalCloseCode`), reported with the
 *   token error that preceded it, else the code's name (`closeCodeName`);
 * - a 503/429 refusal with Retry-After waits what it asked plus up to 10% (retry-after.ts), capped
 *   at MAX_SERVER_DELAY_MS; it is no sign of a blocked transport nor of a stale route, except
 *   `not_ready` (a gateway starting or draining may not be the owner the router names next);
 * - a refused SSE stream: 410 (or `cursor_expired`, `invalid_position`) restarts live at once, 400,
 *   401 and 403 stop the client, 404 goes back to WebSocket, `wrong_gateway` asks the router;
 * - a reconnect frame's delay is used as it is; anything else waits the client's backoff;
 * - close 4002 (rebalance) asks the router; so does an attempt that failed to open.
 */
import { CLOSE_CODES, closeCodeName, isTerminalCloseCode } from './protocol.js';
import { retryAfterDelay } from './retry-after.js';
import type { TransportClose, TransportKind } from './transports.js';

/** Longest wait the client accepts from a server (reconnect frame, Retry-After), in ms: 10 minutes. */
export const MAX_SERVER_DELAY_MS = 10 * 60_000;

/** How a connection ended. */
export interface Loss {
  /** What the transport reported: close code, whether it had opened, a refusal's status, body and Retry-After. */
  close: TransportClose;
  transport: TransportKind;
  /** The `token_*` error frame the gateway sent just before closing, if any. */
  authError: { code: string; message: string } | null;
  /** The wait a reconnect frame asked for, in ms (already capped), when the loss is that frame. */
  serverDelayMs?: number;
  /** Whether the client asks a router where to connect (`routerUrl`). */
  routed: boolean;
}

export interface LossDecision {
  /** Stop reconnecting, and report this error as fatal. Null: reconnect. */
  giveUp: { code: string; message: string } | null;
  /**
   * The wait before the next attempt, in ms, when the gateway set it (a reconnect frame; a refusal's
   * Retry-After, jittered and capped) or 0 to restart a stream live. Undefined: the client's backoff.
   */
  delayMs: number | undefined;
  /** The reason the `reconnecting` state reports instead of the close reason: a Retry-After refusal's error code. */
  retryReason: string | undefined;
  /** The attempt failed in a way that counts against its transport (towards SSE after repeated WebSocket failures, back to WebSocket after an SSE one). */
  transportFailed: boolean;
  /** Ask the router again before the next attempt (only a client with a router has one to ask). */
  askRouter: boolean;
  /** The SSE stream cannot resume from where it was: forget the cursor and the positions, report a reset with this reason per channel. */
  resumeLost: string | undefined;
  /** SSE is not served there (404): go back to WebSocket. */
  sseMissing: boolean;
  /** A non-fatal error to report before the disconnect (an SSE refusal with `wrong_gateway`). */
  notice: { code: string; message: string } | undefined;
}

/** Decides what follows the loss of a connection. `random` draws the jitter added to a Retry-After wait. */
export function decideAfterLoss(loss: Loss, random: () => number): LossDecision {
  const { close } = loss;
  const d: LossDecision = {
    giveUp: null,
    delayMs: loss.serverDelayMs,
    retryReason: undefined,
    transportFailed: !close.opened,
    askRouter: false,
    resumeLost: undefined,
    sseMissing: false,
    notice: undefined,
  };
  if (isTerminalCloseCode(close.code)) {
    const why = loss.authError ?? { code: closeCodeName(close.code), message: close.reason || `closed with code ${close.code}` };
    d.giveUp = { code: why.code, message: why.message };
  } else if (close.retryAfterMs !== undefined) {
    // Admission control (503 overloaded, or not_ready while starting or draining): the right
    // gateway answered and asked for a later attempt. Neither a sign that WebSockets are blocked
    // (no step towards SSE) nor that the route is stale: wait what it asked, plus a little jitter.
    d.delayMs = retryAfterDelay(close.retryAfterMs, MAX_SERVER_DELAY_MS, random);
    d.transportFailed = false;
    d.retryReason = close.error?.code ?? 'retry_after';
    // Except that a gateway which is starting or draining may not be the owner the router names
    // next: ask again (cheap) rather than wait on an address that is going away.
    if (close.error?.code === 'not_ready' && loss.routed) d.askRouter = true;
  } else if (close.httpStatus !== undefined && loss.transport === 'sse') {
    // SSE only: the gateway refuses a WebSocket's token over the socket (4501), so a refused
    // upgrade's status is a proxy's, and counts as a WebSocket failure.
    const status = close.httpStatus;
    const ecode = close.error?.code;
    const emsg = close.error?.message ?? close.reason;
    if (status === 410 || ecode === 'cursor_expired' || ecode === 'invalid_position') {
      d.resumeLost = ecode ?? 'cursor_expired';
      d.delayMs = 0;
      d.transportFailed = false;
    } else if (status === 400 || status === 401 || status === 403) {
      d.giveUp = { code: ecode ?? 'sse_refused', message: emsg };
    } else if (status === 404) {
      d.sseMissing = true;
      d.transportFailed = false;
    } else if (ecode === 'wrong_gateway') {
      // SSE works; the route is stale.
      d.askRouter = true;
      d.transportFailed = false;
      d.notice = { code: ecode, message: emsg };
    }
  }
  if (close.code === CLOSE_CODES.REBALANCE) d.askRouter = true;
  if (d.transportFailed && loss.routed) d.askRouter = true;
  return d;
}
