import type { Server } from 'node:http';

/**
 * Accept-queue length asked of the kernel for every HTTP listener, capped by net.core.somaxconn
 * (4096 on current kernels). Node's default is 511: a reconnect storm that sends thousands of
 * clients to the router (or the publisher) within a second overflows it, and each connection the
 * kernel drops then waits for TCP's SYN retransmission (1 s, then 3 s, 7 s...). Measured with
 * bench:rebalance, where such waits made up most of the slowest reroutes.
 */
export const LISTEN_BACKLOG = 4096;

/** Listens with LISTEN_BACKLOG; resolves once listening, rejects if the port cannot be had. */
export function listenHttp(server: Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, backlog: LISTEN_BACKLOG }, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
}
