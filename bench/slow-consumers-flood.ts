/**
 * The abusers of `bench:slow-consumers`, in a process of their own (so that their CPU does not
 * skew the fast clients' latency measured in the bench process). Started with env:
 * FLOOD_KIND=connections: open WebSocket connections to FLOOD_GATEWAY_WS as fast as the gateway
 * accepts them (at most FLOOD_PARALLEL at once, each closed as soon as it opened or was refused);
 * FLOOD_KIND=publish: POST events to FLOOD_PUBLISHER with FLOOD_API_KEY, FLOOD_PARALLEL requests at
 * once. Runs FLOOD_SECONDS, then prints one JSON line of counts and exits.
 */
import { RawWs } from './raw-ws.js';

const kind = process.env.FLOOD_KIND;
const seconds = Number(process.env.FLOOD_SECONDS ?? 10);
const parallel = Number(process.env.FLOOD_PARALLEL ?? 50);
const until = Date.now() + seconds * 1000;
const counts: Record<string, number> = {};
const count = (k: string) => void (counts[k] = (counts[k] ?? 0) + 1);

async function connections(): Promise<void> {
  const url = new URL(process.env.FLOOD_GATEWAY_WS!);
  const one = () =>
    new Promise<void>((resolve) => {
      const ws: RawWs = new RawWs(
        url,
        {
          open: () => {
            count('opened');
            ws.destroy();
            resolve();
          },
          text: () => {},
          close: () => resolve(),
          refused: (status) => {
            count(`refused_${status}`);
            // A refused abuser retries at once (it does not honour Retry-After).
            resolve();
          },
        },
        { handshakeTimeoutMs: 5000, ...(process.env.FLOOD_LOCAL_ADDRESS ? { localAddress: process.env.FLOOD_LOCAL_ADDRESS } : {}) },
      );
    });
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (Date.now() < until) await one();
    }),
  );
}

async function publishes(): Promise<void> {
  let seq = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (Date.now() < until) {
        const res = await fetch(`${process.env.FLOOD_PUBLISHER}/v1/publish`, {
          method: 'POST',
          headers: { authorization: `Bearer ${process.env.FLOOD_API_KEY}`, 'content-type': 'application/json' },
          body: JSON.stringify({ channel: 'flood:spam', data: { seq: seq++, pad: 'x'.repeat(80) } }),
        }).catch(() => null);
        count(`status_${res?.status ?? 0}`);
        await res?.arrayBuffer().catch(() => {});
      }
    }),
  );
}

await (kind === 'connections' ? connections() : publishes());
// Exit once the line is out (a pipe's write is asynchronous; exiting at once could drop it).
const cpu = process.cpuUsage();
process.stdout.write(JSON.stringify({ kind, seconds, ...counts, cpu_s: (cpu.user + cpu.system) / 1e6 }) + '\n', () => process.exit(0));
