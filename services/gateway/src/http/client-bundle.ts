/**
 * The client SDK for browsers at `GET /fanout-client.js`: packages/client/src/index.ts bundled by
 * esbuild into one ES module when the gateway starts (no build step, always the SDK of this
 * checkout). Pages import it with `import { FanoutClient } from '/fanout-client.js'`.
 *
 * The build runs in esbuild's own process and takes ~100 ms; a request that arrives before it is
 * done waits for it. A failed build answers 500 with the reason (and is logged once to stderr).
 */
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { HttpResponse, TemplatedApp } from 'uWebSockets.js';
import { statusLine } from '@fanout/observability';
import { FanoutError } from '@fanout/protocol';

const ENTRY = fileURLToPath(new URL('../../../../packages/client/src/index.ts', import.meta.url));

export interface ClientBundle {
  code: string;
  etag: string;
}

/** Bundles the SDK as an ES module for browsers. */
export async function buildClientBundle(): Promise<ClientBundle> {
  const result = await build({
    entryPoints: [ENTRY],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2020'],
    write: false,
    minify: false,
    legalComments: 'none',
    logLevel: 'silent',
    banner: {
      js: '// @fanout/client: the fan-out client SDK as one ES module (built from packages/client/src by the gateway at start-up).',
    },
  });
  const code = result.outputFiles[0]!.text;
  return { code, etag: `"${createHash('sha256').update(code).digest('base64url').slice(0, 22)}"` };
}

let shared: Promise<ClientBundle> | null = null;

/** One build per process, shared by every gateway in it (tests start several). */
export function clientBundle(): Promise<ClientBundle> {
  shared ??= buildClientBundle();
  return shared;
}

export function attachClientBundle(app: TemplatedApp, path = '/fanout-client.js'): void {
  const bundle = clientBundle();
  bundle.catch((err: unknown) => process.stderr.write(`fanout: building the client bundle failed: ${(err as Error).message}\n`));
  app.get(path, (res: HttpResponse, req) => {
    const ifNoneMatch = req.getHeader('if-none-match');
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    bundle.then(
      (b) => {
        if (aborted) return;
        res.cork(() => {
          if (ifNoneMatch === b.etag) {
            res.writeStatus('304 Not Modified').writeHeader('etag', b.etag).writeHeader('cache-control', 'no-cache').end();
            return;
          }
          res
            .writeStatus('200 OK')
            .writeHeader('content-type', 'text/javascript; charset=utf-8')
            .writeHeader('etag', b.etag)
            .writeHeader('cache-control', 'no-cache')
            .end(b.code);
        });
      },
      (err: unknown) => {
        if (aborted) return;
        res.cork(() => {
          const e = new FanoutError('internal', `The client bundle could not be built: ${(err as Error).message}`);
          res
            .writeStatus(statusLine(e.status))
            .writeHeader('content-type', 'application/json')
            .writeHeader('cache-control', 'no-store')
            .end(JSON.stringify(e.toJSON()));
        });
      },
    );
  });
}
