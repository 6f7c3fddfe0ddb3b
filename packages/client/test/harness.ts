/**
 * The SDK unit tests' harness: fake gateways and clients made for one test and closed after it,
 * each client recording every event it emits (with the time), so tests assert on what an app sees.
 */
import { afterEach } from 'vitest';
import WebSocket from 'ws';
import { FanoutClient, type FanoutClientEvents, type FanoutClientOptions } from '@fanout/client';
import { FakeGateway } from './fake-gateway.js';

export type Recorded = { [K in keyof FanoutClientEvents]: { type: K; ev: FanoutClientEvents[K]; at: number } }[keyof FanoutClientEvents];

const EVENTS = [
  'message',
  'state',
  'welcome',
  'subscribed',
  'unsubscribed',
  'reset',
  'gap',
  'error',
  'reconnect',
  'disconnect',
  'attempt',
] as const;

/** Call at a test file's top level: registers the clean-up and returns the two makers. */
export function useHarness() {
  const cleanup: (() => unknown)[] = [];
  afterEach(async () => {
    while (cleanup.length) await cleanup.pop()!();
  });

  async function gateway(): Promise<FakeGateway> {
    const g = await FakeGateway.start();
    cleanup.push(() => g.close());
    return g;
  }

  /** A client with the `ws` WebSocket and a quick backoff (50 ms base, 400 ms ceiling) unless `opts` says otherwise. */
  function client(opts: FanoutClientOptions) {
    const c = new FanoutClient({ WebSocket: WebSocket as never, backoff: { baseMs: 50, maxMs: 400 }, ...opts });
    const events: Recorded[] = [];
    for (const type of EVENTS) c.on(type, (ev) => events.push({ type, ev, at: Date.now() } as Recorded));
    cleanup.push(() => c.close());
    const of = <K extends keyof FanoutClientEvents>(type: K) =>
      events.filter((e) => e.type === type).map((e) => e.ev as FanoutClientEvents[K]);
    const data = () => of('message').map((m) => m.data);
    /** The waits the client planned (state `reconnecting`), in order. */
    const plans = () => of('state').filter((s) => s.state === 'reconnecting');
    return { c, events, of, data, plans };
  }

  return { gateway, client };
}
