/**
 * Reads each known gateway's /v1/info (connections, readiness) for the status page and metrics.
 * Only gateways that Kafka lists as group members are asked; an unreachable one shows as such.
 */
import type { RouteTable } from './route-table.js';

export interface GatewayInfo {
  reachable: boolean;
  ready: boolean;
  connections: number;
  checkedAt: number;
}

export class GatewayInfoPoller {
  readonly info = new Map<string, GatewayInfo>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly table: RouteTable,
    private readonly everyMs: number,
  ) {}

  start(): void {
    const tick = async () => {
      const urls = new Set<string>();
      for (const v of this.table.views.values()) for (const m of v.snapshot.members) urls.add(m.url);
      await Promise.all(
        [...urls].map(async (url) => {
          try {
            const res = await fetch(url + '/v1/info', { signal: AbortSignal.timeout(Math.min(1000, this.everyMs)) });
            const body = (await res.json()) as { ready?: boolean; connections?: number };
            this.info.set(url, {
              reachable: true,
              ready: body.ready === true,
              connections: Number(body.connections ?? 0),
              checkedAt: Date.now(),
            });
          } catch {
            this.info.set(url, { reachable: false, ready: false, connections: 0, checkedAt: Date.now() });
          }
        }),
      );
      for (const url of this.info.keys()) if (!urls.has(url)) this.info.delete(url);
    };
    const loop = () => {
      this.timer = setTimeout(() => void tick().finally(() => this.timer && loop()), this.everyMs);
    };
    void tick();
    loop();
  }

  stop(): void {
    const t = this.timer;
    this.timer = null;
    if (t) clearTimeout(t);
  }
}
