/**
 * The error-code registry. Every error a client can see carries one of these stable codes, an HTTP
 * status (for HTTP APIs), whether retrying the same request can succeed, and a message that says
 * what to do. Codes never change meaning; new ones are only added.
 *
 * Every error answer derives from it: HTTP bodies and statuses through `FanoutError` (`toJSON`,
 * `status`; `sendError` in @fanout/http-api), WebSocket error frames through `errorFrame`
 * (frames.ts). The tables in the docs repeat it and are checked against it
 * (test/registry-copies.test.ts); the OpenAPI documents by test/openapi-contract.test.ts.
 */
export const ERRORS = {
  // Authentication and authorization
  unauthorized: {
    status: 401,
    retriable: false,
    message: 'Missing or unknown API key: send it as "Authorization: Bearer <key>" or "x-api-key".',
  },
  // Request shape
  invalid_json: { status: 400, retriable: false, message: 'The body is not valid JSON.' },
  invalid_event: {
    status: 400,
    retriable: false,
    message: 'The event is malformed: send {"channel": "<namespace>:<name>", "data": <JSON>, "id"?: "<event id>"}.',
  },
  invalid_channel: {
    status: 400,
    retriable: false,
    message: 'Channel names are "<namespace>:<name>": namespace [a-z][a-z0-9-]{0,31}, name [A-Za-z0-9._=@-]{1,200}.',
  },
  invalid_event_id: {
    status: 400,
    retriable: false,
    message: 'Event ids are 1 to 128 of [A-Za-z0-9._:-]; omit the id to have one generated.',
  },
  json_too_deep: {
    status: 400,
    retriable: false,
    message:
      'The JSON nests arrays and objects more than 64 levels deep (MAX_JSON_DEPTH); flatten it, or send a deep structure as a string inside the data.',
  },
  payload_too_large: {
    status: 413,
    retriable: false,
    message: 'The body or an event is larger than the configured limit; split it or send less data.',
  },
  batch_too_large: {
    status: 413,
    retriable: false,
    message: 'Too many events in one batch; send at most the configured number per request.',
  },
  unsupported_media_type: { status: 415, retriable: false, message: 'Send the body as application/json.' },
  not_found: { status: 404, retriable: false, message: 'No such route; see docs/publisher.md for the API.' },
  method_not_allowed: { status: 405, retriable: false, message: 'This route does not accept that method.' },
  wrong_gateway: {
    status: 409,
    retriable: true,
    message:
      'This gateway does not serve that user channel now: ask the router (GET /v1/route?user=<id>&region=<region>) and connect to the gateway it names.',
  },
  token_keys_unavailable: {
    status: 503,
    retriable: true,
    message: 'The keys to verify connect tokens could not be fetched; reconnect shortly with the same token.',
  },
  // Router
  unknown_region: {
    status: 404,
    retriable: false,
    message: 'The router does not know that region; see GET /v1/status for the regions it serves.',
  },
  no_owner: {
    status: 503,
    retriable: true,
    message:
      "No live gateway owns that user's partition right now (none running, or a rebalance in progress); retry after a short backoff.",
  },
  // Server side
  kafka_unavailable: {
    status: 503,
    retriable: true,
    message:
      'Kafka did not acknowledge the write; some events of the request may have been written. Retry with the same event ids, so that consumers can recognize repeats by id.',
  },
  replay_unavailable: {
    status: 503,
    retriable: true,
    message: 'The messages after this cursor could not be read back from Kafka just now; retry shortly with the same cursor.',
  },
  not_ready: { status: 503, retriable: true, message: 'The service is starting or draining; retry shortly.' },
  overloaded: {
    status: 503,
    retriable: true,
    message:
      'The gateway admits new connections at a bounded rate and this one is over it; retry after the seconds in the Retry-After header (retry_after_ms in the body), with your resume positions.',
  },
  rate_limited: {
    status: 429,
    retriable: true,
    message: 'Too many requests or new connections from this client (address or API key); retry after the Retry-After seconds.',
  },
  too_many_connections: {
    status: 429,
    retriable: true,
    message: 'This address holds the configured maximum of open connections; close some, or retry after the Retry-After seconds.',
  },
  internal: { status: 500, retriable: true, message: 'Unexpected error; retry, and report it if it persists.' },
  // WebSocket protocol (sent in error frames; the connection stays open)
  bad_frame: { status: 400, retriable: false, message: 'Frames are JSON objects with an "op" field; see docs/protocol.md.' },
  unknown_op: { status: 400, retriable: false, message: 'Unknown "op"; known ops are subscribe, unsubscribe, credit and ping.' },
  frame_too_large: { status: 413, retriable: false, message: 'The frame is larger than the gateway accepts; send smaller frames.' },
  invalid_position: {
    status: 400,
    retriable: false,
    message:
      'Positions are "<epoch>:<partition>:<offset>" exactly as received in a message\'s "pos" (or an SSE id); send one you received, or none.',
  },
  invalid_parameter: {
    status: 400,
    retriable: false,
    message: "A query parameter is missing or out of range; see docs/pull.md for each endpoint's parameters.",
  },
  cursor_expired: {
    status: 410,
    retriable: false,
    message:
      'The cursor is older than the gateway can replay (or from another stream epoch); fetch the current state and continue without a cursor.',
  },
  invalid_credit: {
    status: 400,
    retriable: false,
    message: 'A credit frame is {"op":"credit","n":<integer 1..1000000>} or {"op":"credit","unlimited":true}; nothing was changed.',
  },
  unlimited_not_allowed: {
    status: 403,
    retriable: false,
    message: 'This gateway does not grant unlimited credits; grant a number of messages with {"op":"credit","n":<n>}.',
  },
  too_many_channels: {
    status: 400,
    retriable: false,
    message: 'This connection has reached its subscription limit; unsubscribe from something first.',
  },
  forbidden_channel: {
    status: 403,
    retriable: false,
    message: 'This connection may not subscribe to that channel: its connect token does not allow it.',
  },
  // Connect tokens (JWT)
  token_required: {
    status: 401,
    retriable: false,
    message: 'This needs a connect token: pass it as ?token=<JWT> (or Authorization: Bearer <JWT>).',
  },
  token_invalid: {
    status: 401,
    retriable: false,
    message: 'The connect token is malformed, unsigned, signed with a disallowed algorithm or by an unknown key; get a new token.',
  },
  token_expired: { status: 401, retriable: false, message: 'The connect token has expired; get a new token and reconnect.' },
  // Webhooks
  endpoint_not_found: { status: 404, retriable: false, message: 'No webhook endpoint has that id; list them with GET /v1/endpoints.' },
  invalid_endpoint: {
    status: 400,
    retriable: false,
    message:
      'The endpoint is malformed: send {"url": "https://...", "channels": ["<channel>" | "<namespace>:*" | "*"]} and optional fields; see docs/webhooks.md.',
  },
  invalid_webhook_url: {
    status: 400,
    retriable: false,
    message:
      'The endpoint URL must be an absolute http(s) URL of at most 2048 characters, without credentials or fragment, whose host resolves.',
  },
  webhook_url_forbidden: {
    status: 400,
    retriable: false,
    message:
      'The endpoint URL points to a loopback, link-local, private or reserved address; use a public address (operators can allow ranges with FANOUT_ALLOWED_TARGETS).',
  },
  endpoint_disabled: {
    status: 409,
    retriable: false,
    message: 'The endpoint is disabled; enable it with POST /v1/endpoints/<id>/enable first.',
  },
  too_many_endpoints: {
    status: 409,
    retriable: false,
    message: 'The registry holds the configured maximum of endpoints; delete unused ones first.',
  },
  inbound_source_unknown: {
    status: 404,
    retriable: false,
    message: 'No inbound webhook source of that name is configured; see FANOUT_INBOUND_WEBHOOKS in docs/webhooks.md.',
  },
  inbound_headers_missing: {
    status: 400,
    retriable: false,
    message: 'Send the Standard Webhooks headers webhook-id, webhook-timestamp and webhook-signature; nothing was published.',
  },
  inbound_signature_invalid: {
    status: 400,
    retriable: false,
    message: "No signature in webhook-signature matches the body under this source's secret; nothing was published.",
  },
  inbound_timestamp_out_of_tolerance: {
    status: 400,
    retriable: false,
    message: "webhook-timestamp is too far from the server's clock; nothing was published. Sign again with the current time.",
  },
} as const;

export type ErrorCode = keyof typeof ERRORS;

/**
 * The deepest nesting of arrays and objects accepted in any JSON the services parse from clients
 * (HTTP bodies, WebSocket frames): deeper input is json_too_deep. Legitimate events nest a few
 * levels; the limit keeps recursive code (JSON.stringify, validators) far from the stack limit.
 */
export const MAX_JSON_DEPTH = 64;

/**
 * Whether JSON text nests arrays and objects deeper than `limit`, found without parsing it and
 * without recursion (a 100 000-deep array would overflow a recursive walk): one linear scan that
 * counts `[` and `{` outside strings, skipping escaped characters inside them. Works on the UTF-8
 * bytes as well as on the string: the characters it looks at are ASCII, which never occur inside a
 * multi-byte UTF-8 sequence. Malformed text is not judged here (JSON.parse does that afterwards).
 */
export function jsonTooDeep(text: string | Uint8Array, limit: number = MAX_JSON_DEPTH): boolean {
  const at = typeof text === 'string' ? (i: number) => text.charCodeAt(i) : (i: number) => text[i]!;
  let depth = 0;
  let inString = false;
  for (let i = 0, n = text.length; i < n; i++) {
    const c = at(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

export class FanoutError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly retriable: boolean;
  readonly detail?: unknown;

  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown; detail?: unknown }) {
    super(message ?? ERRORS[code].message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = 'FanoutError';
    this.code = code;
    this.status = ERRORS[code].status;
    this.retriable = ERRORS[code].retriable;
    this.detail = options?.detail;
  }

  toJSON(): { error: { code: ErrorCode; message: string; retriable: boolean; detail?: unknown } } {
    return {
      error: {
        code: this.code,
        message: this.message,
        retriable: this.retriable,
        ...(this.detail !== undefined ? { detail: this.detail } : {}),
      },
    };
  }
}
