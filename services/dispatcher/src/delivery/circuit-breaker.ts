/**
 * A circuit breaker per endpoint. Closed: requests flow and consecutive failures are counted; at
 * `threshold` it opens. Open: no requests for `openMs` (deliveries are deferred through the retry
 * topics instead, without spending attempts). Then half-open: one probe request; success closes
 * it, failure opens it again for twice as long, up to `maxOpenMs`. A threshold of 0 never opens.
 */
export type CircuitState = 'closed' | 'open' | 'half_open';

export class CircuitBreaker {
  private failures = 0;
  private openUntil = 0;
  private openFor: number;
  private probing = false;
  private stateNow: CircuitState = 'closed';

  constructor(private readonly o: { threshold: number; openMs: number; maxOpenMs: number }) {
    this.openFor = o.openMs;
  }

  state(now = Date.now()): CircuitState {
    if (this.stateNow === 'open' && now >= this.openUntil) this.stateNow = 'half_open';
    return this.stateNow;
  }

  /** Closed with no failures counted: nothing to remember. */
  get clean(): boolean {
    return this.stateNow === 'closed' && this.failures === 0;
  }

  /** While open, how long until a probe may go, in ms. */
  remainingMs(now = Date.now()): number {
    return this.state(now) === 'open' ? this.openUntil - now : 0;
  }

  /** Whether a request may start now (in half-open, only the single probe). */
  canStart(now = Date.now()): boolean {
    const s = this.state(now);
    return s === 'closed' || (s === 'half_open' && !this.probing);
  }

  started(now = Date.now()): void {
    if (this.state(now) === 'half_open') this.probing = true;
  }

  succeeded(): void {
    this.failures = 0;
    this.probing = false;
    this.openFor = this.o.openMs;
    this.stateNow = 'closed';
  }

  /** Returns true when this failure opened the circuit. */
  failed(now = Date.now()): boolean {
    const s = this.state(now);
    if (s === 'half_open' && this.probing) {
      this.probing = false;
      this.openFor = Math.min(this.openFor * 2, this.o.maxOpenMs);
      return this.open(now);
    }
    if (s !== 'closed') return false;
    this.failures++;
    if (this.o.threshold > 0 && this.failures >= this.o.threshold) {
      this.openFor = this.o.openMs;
      return this.open(now);
    }
    return false;
  }

  private open(now: number): boolean {
    this.stateNow = 'open';
    this.openUntil = now + this.openFor;
    return true;
  }
}
