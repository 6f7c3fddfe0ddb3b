/**
 * A real webhook receiver on loopback: an HTTP server that records every request (headers, raw
 * body, when, what it answered) and answers as the test says, per request.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  id: string;
  headers: IncomingHttpHeaders;
  body: string;
  /** performance.now() when the request arrived. */
  at: number;
  /** Which attempt of this webhook-id this was (1 = first). */
  attempt: number;
  status: number;
}

export interface Answer {
  status?: number;
  body?: string;
  /** Answer only after this long, in ms. */
  delayMs?: number;
}

export class Receiver {
  readonly requests: Received[] = [];
  private readonly attempts = new Map<string, number>();
  /** Requests being answered right now, and the most at once. */
  concurrent = 0;
  maxConcurrent = 0;

  private constructor(
    private readonly server: Server,
    readonly url: string,
    public answer: (r: { id: string; attempt: number }) => Answer,
  ) {}

  static async start(answer: (r: { id: string; attempt: number }) => Answer = () => ({ status: 200 })): Promise<Receiver> {
    let self: Receiver | null = null;
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const r = self!;
        const id = String(req.headers['webhook-id'] ?? '');
        const attempt = (r.attempts.get(id) ?? 0) + 1;
        r.attempts.set(id, attempt);
        const a = r.answer({ id, attempt });
        const status = a.status ?? 200;
        r.concurrent++;
        r.maxConcurrent = Math.max(r.maxConcurrent, r.concurrent);
        const entry: Received = {
          id,
          headers: req.headers,
          body: Buffer.concat(chunks).toString('utf8'),
          at: performance.now(),
          attempt,
          status,
        };
        const reply = () => {
          r.concurrent--;
          r.requests.push(entry);
          if (!res.destroyed)
            res.writeHead(status, { 'content-type': 'text/plain' }).end(a.body ?? (status < 300 ? 'ok' : 'failing on purpose'));
        };
        if (a.delayMs) setTimeout(reply, a.delayMs);
        else reply();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const port = (server.address() as AddressInfo).port;
    self = new Receiver(server, `http://127.0.0.1:${port}/hook`, answer);
    return self;
  }

  /** Webhook ids answered with a 2xx. */
  delivered(): Set<string> {
    return new Set(this.requests.filter((r) => r.status < 300).map((r) => r.id));
  }

  attemptsOf(id: string): Received[] {
    return this.requests.filter((r) => r.id === id);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
