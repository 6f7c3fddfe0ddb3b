/**
 * A token bucket: `ratePerS` tokens a second, holding at most one second's worth (at least one),
 * so an endpoint sees at most its rate on average and a burst of one second's worth after a pause.
 */
export class TokenBucket {
  private tokens: number;
  private updated: number;
  private capacity: number;

  constructor(
    private ratePerS: number,
    now = performance.now(),
  ) {
    this.capacity = Math.max(1, ratePerS);
    this.tokens = this.capacity;
    this.updated = now;
  }

  get rate(): number {
    return this.ratePerS;
  }

  /** Changes the rate, keeping the tokens already earned (capped at the new capacity). */
  setRate(ratePerS: number, now = performance.now()): void {
    this.refill(now);
    this.ratePerS = ratePerS;
    this.capacity = Math.max(1, ratePerS);
    this.tokens = Math.min(this.tokens, this.capacity);
  }

  private refill(now: number): void {
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.updated) / 1000) * this.ratePerS);
    this.updated = now;
  }

  /** Takes a token if there is one. */
  tryTake(now = performance.now()): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Milliseconds until the next token. */
  waitMs(now = performance.now()): number {
    this.refill(now);
    return this.tokens >= 1 ? 0 : Math.ceil(((1 - this.tokens) / this.ratePerS) * 1000);
  }
}
