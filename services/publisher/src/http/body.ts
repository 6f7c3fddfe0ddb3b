import type { IncomingMessage } from 'node:http';
import { FanoutError } from '@fanout/protocol';

/** Reads a JSON body of at most `limit` bytes; larger bodies fail fast with payload_too_large. */
export async function readJsonBody(req: IncomingMessage, limit: number): Promise<unknown> {
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/json\b/i.test(type)) {
    throw new FanoutError('unsupported_media_type', `Content-Type is ${JSON.stringify(type)}; send the body as application/json.`);
  }
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
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new FanoutError('invalid_json');
  }
}
