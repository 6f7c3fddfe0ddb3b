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
    return this.identify(req) !== null;
  }

  /** Which configured key the request carries (its index, e.g. for a rate limit per key), or null. */
  identify(req: IncomingMessage): number | null {
    const auth = req.headers.authorization;
    let key: string | undefined;
    if (auth?.startsWith('Bearer ')) key = auth.slice(7).trim();
    else if (typeof req.headers['x-api-key'] === 'string') key = req.headers['x-api-key'];
    if (!key) return null;
    const d = createHash('sha256').update(key).digest();
    let found: number | null = null;
    // Every key is compared, whichever matches: the time taken says nothing about which one.
    this.digests.forEach((k, i) => {
      if (timingSafeEqual(k, d)) found = i;
    });
    return found;
  }
}
