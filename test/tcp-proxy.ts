/**
 * A TCP proxy on a loopback port that forwards new connections to the current target port,
 * standing in for a load balancer or a flaky network in tests:
 * - route(port) sends new connections to another gateway; route(null) refuses them (the gateway is "gone");
 * - cut() destroys every open connection (a network failure: no close frame);
 * - blockUpgrades cuts a connection whose first request asks for a WebSocket upgrade (a proxy that
 *   does not pass WebSockets);
 * - blackhole(true) is a network partition: open connections stay open but nothing gets through
 *   (bytes are held), new connections are accepted but not connected onwards; blackhole(false)
 *   heals it: held bytes are delivered in order and held connections go through, as TCP would
 *   once the network is back (unless an end gave up meanwhile).
 */
import { connect, createServer, type Socket } from 'node:net';

export interface TcpProxy {
  port: number;
  url: string;
  route(port: number | null): void;
  cut(): void;
  blackhole(on: boolean): void;
  close(): Promise<void>;
}

export async function startProxy(target: number | null, opts: { blockUpgrades?: boolean } = {}): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  const state = { target, blackhole: false };
  // While blackholed: what would have been sent (in order), and connections not yet made.
  let held: (() => void)[] = [];
  const gate = (fn: () => void) => (state.blackhole ? held.push(fn) : fn());
  const server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    if (state.target === null) return void client.destroy();
    if (state.blackhole) {
      client.pause();
      held.push(() => {
        if (!client.destroyed) onward(client);
      });
      return;
    }
    onward(client);
  });
  const onward = (client: Socket) => {
    const upstream = connect(state.target ?? 0, '127.0.0.1');
    sockets.add(upstream);
    const kill = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(upstream);
    };
    for (const s of [client, upstream]) {
      s.on('error', kill);
      s.on('close', kill);
    }
    const pipe = () => {
      client.on('data', (d: Buffer) => gate(() => upstream.write(d)));
      upstream.on('data', (d: Buffer) => gate(() => client.write(d)));
      client.on('end', () => gate(() => upstream.end()));
      upstream.on('end', () => gate(() => client.end()));
      client.resume();
    };
    if (!opts.blockUpgrades) return pipe();
    client.once('data', (first: Buffer) => {
      if (/^upgrade:\s*websocket/im.test(first.toString('latin1'))) return kill();
      upstream.write(first);
      pipe();
    });
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy has no port');
  return {
    port: address.port,
    url: `http://127.0.0.1:${address.port}`,
    route(port) {
      state.target = port;
    },
    cut() {
      for (const s of sockets) s.destroy();
    },
    blackhole(on) {
      state.blackhole = on;
      if (on) return;
      const pending = held;
      held = [];
      for (const fn of pending) fn();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
