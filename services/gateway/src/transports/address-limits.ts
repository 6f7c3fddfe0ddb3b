/**
 * Limits per client address (GitHub issue "Hostile input"): new connections and requests per
 * second (a token bucket per address) and connections held open at once (WebSockets, SSE streams,
 * held long polls), so that one address cannot take what the gateway-wide admission rate
 * (admission.ts) shares among everyone. Over either limit: `429` with Retry-After (`rate_limited`,
 * `too_many_connections`). Behind a load balancer the address comes from FANOUT_CLIENT_ADDRESS_HEADER
 * (http-api's clientAddress); many clients behind one NAT share an address, so the defaults are
 * generous.
 */
import { FanoutError } from '@fanout/protocol';
import { KeyedRateLimiter, rateLimited } from '@fanout/http-api';

export interface AddressLimitOptions {
  /** New connections and requests per second per address (0: no limit). */
  ratePerS: number;
  burst: number;
  /** Connections one address may hold open at once (0: no limit). */
  maxConnections: number;
  onRefused?(limit: 'rate' | 'connections'): void;
}

export class AddressLimits {
  private readonly rate: KeyedRateLimiter;
  private readonly open = new Map<string, number>();

  constructor(private readonly o: AddressLimitOptions) {
    this.rate = new KeyedRateLimiter({ ratePerS: o.ratePerS, burst: o.burst });
  }

  /** A new connection (`holds`: it will stay open) or request from `address`: null, or the 429 to answer. */
  check(address: string, holds: boolean): FanoutError | null {
    if (holds && this.o.maxConnections > 0 && (this.open.get(address) ?? 0) >= this.o.maxConnections) {
      this.o.onRefused?.('connections');
      return new FanoutError(
        'too_many_connections',
        `This address holds ${this.o.maxConnections} open connections already (FANOUT_MAX_CONNECTIONS_PER_ADDRESS); close some, or retry after 1 s.`,
        { detail: { retry_after_ms: 1000 } },
      );
    }
    const wait = this.rate.take(address);
    if (wait === null) return null;
    this.o.onRefused?.('rate');
    return rateLimited(wait, 'This address', 'FANOUT_RATE_PER_ADDRESS');
  }

  /** A connection from `address` is open (WebSocket opened, SSE stream started, poll held). */
  hold(address: string): void {
    this.open.set(address, (this.open.get(address) ?? 0) + 1);
  }

  release(address: string): void {
    const n = (this.open.get(address) ?? 0) - 1;
    if (n > 0) this.open.set(address, n);
    else this.open.delete(address);
  }

  /** Addresses holding connections now. */
  get addresses(): number {
    return this.open.size;
  }
}
