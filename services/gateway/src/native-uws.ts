/**
 * uWebSockets.js falls back, with only a console warning, to a slow pure-JS implementation when its
 * native binary does not load (wrong Node ABI or glibc). The gateway refuses to run on the
 * fallback: it would work in tests and collapse in production.
 */
import { createRequire } from 'node:module';

export type Uws = typeof import('uWebSockets.js');

export class NativeUwsError extends Error {
  constructor(detail: string) {
    super(
      `uWebSockets.js did not load its native binary (${detail}). This build needs Node 20 (ABI 115) on ` +
        `glibc >= 2.31; running on ${process.version} (ABI ${process.versions.modules}). Use Node 20, or reinstall with npm ci.`,
    );
    this.name = 'NativeUwsError';
  }
}

export function loadNativeUws(): Uws {
  if (/^(1|true)$/i.test(process.env.UWS_USE_FALLBACK ?? '')) throw new NativeUwsError('UWS_USE_FALLBACK is set');
  const require = createRequire(import.meta.url);
  const uws = require('uWebSockets.js') as Uws & { getParts?: unknown };
  const native = typeof uws.getParts === 'function' && /\[native code\]/.test(Function.prototype.toString.call(uws.App));
  if (!native) throw new NativeUwsError('the JavaScript fallback was loaded');
  return uws;
}
