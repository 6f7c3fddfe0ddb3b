import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** Checks API keys in constant time (keys are compared as SHA-256 digests of equal length). */
export class ApiKeys {
  private readonly digests: Buffer[];

  constructor(keys: readonly string[]) {
    this.digests = keys.map((k) => createHash('sha256').update(k).digest());
  }

  /** Reads `Authorization: Bearer <key>` or `x-api-key: <key>`. */
  accepts(req: IncomingMessage): boolean {
    const auth = req.headers.authorization;
    let key: string | undefined;
    if (auth?.startsWith('Bearer ')) key = auth.slice(7).trim();
    else if (typeof req.headers['x-api-key'] === 'string') key = req.headers['x-api-key'];
    if (!key) return false;
    const d = createHash('sha256').update(key).digest();
    let ok = false;
    for (const k of this.digests) if (timingSafeEqual(k, d)) ok = true;
    return ok;
  }
}
