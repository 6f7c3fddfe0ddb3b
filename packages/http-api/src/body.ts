import type { IncomingMessage } from 'node:http';
import { FanoutError, jsonTooDeep, MAX_JSON_DEPTH } from '@fanout/protocol';

/**
 * Reads a body of at most `limit` bytes as raw bytes (what a signature is computed over); larger
 * bodies fail fast with payload_too_large, before they are read, when Content-Length says so.
 */
export async function readRawBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > limit) {
    throw new FanoutError('payload_too_large', `The body is ${declared} bytes; the limit is ${limit}.`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new FanoutError('payload_too_large', `The body is over the limit of ${limit} bytes.`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Throws unsupported_media_type unless the request says its body is JSON. */
export function requireJsonContentType(req: IncomingMessage): void {
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/json\b/i.test(type)) {
    throw new FanoutError('unsupported_media_type', `Content-Type is ${JSON.stringify(type)}; send the body as application/json.`);
  }
}

/**
 * Parses JSON text from a client. Nesting deeper than MAX_JSON_DEPTH is json_too_deep (checked by a
 * linear scan before parsing, so a 100 000-deep body costs one pass and no stack); anything
 * JSON.parse refuses, whatever it throws (SyntaxError, or a RangeError on pathological input), is
 * invalid_json: a hostile body is a 400, never a 500.
 */
export function parseJson(raw: Buffer | string): unknown {
  if (jsonTooDeep(raw)) {
    throw new FanoutError(
      'json_too_deep',
      `The JSON nests arrays and objects more than ${MAX_JSON_DEPTH} levels deep; flatten it, or send a deep structure as a string inside the data.`,
    );
  }
  try {
    return JSON.parse(typeof raw === 'string' ? raw : raw.toString('utf8'));
  } catch {
    throw new FanoutError('invalid_json');
  }
}

/** Reads a JSON body of at most `limit` bytes; larger bodies fail fast with payload_too_large. */
export async function readJsonBody(req: IncomingMessage, limit: number): Promise<unknown> {
  requireJsonContentType(req);
  return parseJson(await readRawBody(req, limit));
}
