/**
 * One POST to one endpoint. Success is a 2xx status within the timeout; anything else (another
 * status, a redirect, which is never followed, a timeout, a refused or reset connection, a target
 * the URL policy forbids) is a failure with a short reason. Keep-alive agents reuse connections;
 * every new connection resolves through the URL policy's lookup, so the address checked is the
 * address connected to.
 */
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import type { UrlPolicy } from '../endpoints/url-policy.js';

export type AttemptKind = 'success' | 'http_error' | 'timeout' | 'network_error' | 'forbidden_target';

export interface AttemptResult {
  ok: boolean;
  kind: AttemptKind;
  status?: number;
  /** For failures: `http_503: <body excerpt>`, `timeout`, `network: ECONNREFUSED`, `forbidden_target`. */
  error?: string;
  /** Time to the response headers (or the failure), in seconds. */
  seconds: number;
}

/** Beyond this many bytes a response body is not drained but its connection closed. */
const DRAIN_LIMIT_BYTES = 64 * 1024;

export class HttpSender {
  private readonly httpAgent = new http.Agent({ keepAlive: true, maxFreeSockets: 256, scheduling: 'lifo', timeout: 60_000 });
  private readonly httpsAgent = new https.Agent({ keepAlive: true, maxFreeSockets: 256, scheduling: 'lifo', timeout: 60_000 });

  constructor(private readonly o: { policy: UrlPolicy; timeoutMs: number; maxResponseBytes: number; userAgent: string }) {}

  post(url: URL, headers: Record<string, string>, body: string): Promise<AttemptResult> {
    const started = process.hrtime.bigint();
    const seconds = () => Number(process.hrtime.bigint() - started) / 1e9;
    return new Promise<AttemptResult>((resolve) => {
      let settled = false;
      const finish = (r: Omit<AttemptResult, 'seconds'>) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve({ ...r, seconds: seconds() });
      };
      const host = url.hostname.replace(/^\[|\]$/g, '');
      // Sockets to an IP literal skip DNS, so the lookup cannot check them: check here.
      if (isIP(host) && this.o.policy.isForbiddenAddress(host)) {
        return resolve({ ok: false, kind: 'forbidden_target', error: 'forbidden_target', seconds: seconds() });
      }
      const isHttps = url.protocol === 'https:';
      const req = (isHttps ? https : http).request(
        url,
        {
          method: 'POST',
          agent: isHttps ? this.httpsAgent : this.httpAgent,
          lookup: this.o.policy.lookup,
          headers: {
            ...headers,
            'content-type': 'application/json',
            'content-length': String(Buffer.byteLength(body)),
            'user-agent': this.o.userAgent,
          },
        },
        (res) => {
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) {
            finish({ ok: true, kind: 'success', status });
            drain(res, 0);
            return;
          }
          // Keep the start of the body: it often says why (shown in dead letters).
          const chunks: Buffer[] = [];
          let kept = 0;
          drain(res, this.o.maxResponseBytes, (c) => {
            chunks.push(c);
            kept += c.length;
          });
          const done = () => {
            const excerpt = Buffer.concat(chunks, kept).toString('utf8').replace(/\s+/g, ' ').trim().slice(0, 200);
            finish({ ok: false, kind: 'http_error', status, error: `http_${status}${excerpt ? `: ${excerpt}` : ''}` });
          };
          res.once('end', done);
          res.once('close', done);
        },
      );
      const timer = setTimeout(() => {
        finish({ ok: false, kind: 'timeout', error: `timeout: no response within ${this.o.timeoutMs} ms` });
        req.destroy();
      }, this.o.timeoutMs);
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'ETARGETFORBIDDEN') finish({ ok: false, kind: 'forbidden_target', error: 'forbidden_target' });
        else finish({ ok: false, kind: 'network_error', error: `network: ${err.code ?? err.message}`.slice(0, 200) });
      });
      req.end(body);
    });
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}

/** Reads a response to its end (so its connection is reused), handing the first `keep` bytes to `onKept`. */
function drain(res: http.IncomingMessage, keep: number, onKept?: (c: Buffer) => void): void {
  let seen = 0;
  res.on('data', (c: Buffer) => {
    if (onKept && seen < keep) onKept(c.subarray(0, keep - seen));
    seen += c.length;
    if (seen > DRAIN_LIMIT_BYTES) res.destroy();
  });
  res.on('error', () => {});
}
