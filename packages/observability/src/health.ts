/**
 * Liveness and readiness, answered by ops.ts: `/healthz` answers 200 until `break` (something
 * failed for good); `/readyz` answers 200 only once every named check has passed and the service
 * is not draining.
 */
export class Health {
  private readonly pending = new Set<string>();
  private draining = false;
  private brokenReason: string | null = null;

  constructor(checks: string[] = []) {
    for (const c of checks) this.pending.add(c);
  }

  /** Marks a start-up check as passed (e.g. `kafka`, `listen`). */
  pass(check: string): void {
    this.pending.delete(check);
  }

  fail(check: string): void {
    this.pending.add(check);
  }

  /** Something failed for good (e.g. a Kafka consumer crashed without restarting): liveness fails too, so the orchestrator restarts the process. */
  break(reason: string): void {
    this.brokenReason = reason;
    this.pending.add('broken');
  }

  get alive(): boolean {
    return this.brokenReason === null;
  }

  get broken(): string | null {
    return this.brokenReason;
  }

  drain(): void {
    this.draining = true;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  get ready(): boolean {
    return !this.draining && this.pending.size === 0;
  }

  /** Ready but for the named checks (e.g. a gateway accepts connections before /readyz says ready). */
  readyExcept(...checks: string[]): boolean {
    if (this.draining) return false;
    for (const c of this.pending) if (!checks.includes(c)) return false;
    return true;
  }

  /** Body for /readyz. */
  report(): { ready: boolean; draining: boolean; waiting_for: string[] } {
    return { ready: this.ready, draining: this.draining, waiting_for: [...this.pending] };
  }
}
