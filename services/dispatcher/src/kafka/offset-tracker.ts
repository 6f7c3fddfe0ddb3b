/**
 * Which offsets of one partition may be committed. A record is taken with the number of deliveries
 * it started; it is done when all of them settled. Deliveries settle out of order (a fast endpoint
 * before a slow one), so the committable offset is the lowest record not done yet, or one past the
 * last record taken when all are done: everything before it is delivered or durably scheduled.
 */
export class PartitionTracker {
  /** offset -> deliveries not settled yet; insertion order is offset order. */
  private readonly pending = new Map<number, number>();
  /** One past the highest offset taken; -1 before the first. */
  next = -1;
  /** The offset last committed (the next one to read); -1 before the first commit. */
  committed = -1;
  /** Paused because `size` reached the window. */
  pausedForWindow = false;
  /** The record a pause stopped at (the next one to take); -1 when not paused. */
  resumeAt = -1;

  /** Takes a record with one guard count; add() more, then settle() the guard. */
  take(offset: number): void {
    this.pending.set(offset, 1);
    this.next = offset + 1;
  }

  add(offset: number): void {
    const n = this.pending.get(offset);
    if (n !== undefined) this.pending.set(offset, n + 1);
  }

  settle(offset: number): void {
    const n = this.pending.get(offset);
    if (n === undefined) return;
    if (n <= 1) this.pending.delete(offset);
    else this.pending.set(offset, n - 1);
  }

  /** Records taken and not done. */
  get size(): number {
    return this.pending.size;
  }

  /** The offset to commit: the lowest record not done, else one past the last taken; -1 if none taken. */
  get committable(): number {
    const first = this.pending.keys().next();
    return first.done ? this.next : first.value;
  }
}
