// Per-channel bookkeeping of the seq numbers a reader received: every channel gets seq 0, 1, 2, ...
// (one per publish iteration), so anything between the first expected and the last received that
// never arrived is missing, and anything seen twice is a duplicate.
export class SeqTracker {
  constructor() {
    this.seen = {}; // channel -> { set: {seq: true}, max: -1, count: 0 }
    this.duplicates = 0;
  }

  add(channel, seq) {
    let c = this.seen[channel];
    if (!c) c = this.seen[channel] = { set: {}, max: -1, count: 0 };
    if (c.set[seq]) {
      this.duplicates++;
      return false;
    }
    c.set[seq] = true;
    c.count++;
    if (seq > c.max) c.max = seq;
    return true;
  }

  last(channel) {
    const c = this.seen[channel];
    return c ? c.max : -1;
  }

  /** Messages missing per channel between `from` (the first seq the reader should have) and the highest seen. */
  missing(from = 0) {
    let n = 0;
    for (const ch of Object.keys(this.seen)) {
      const c = this.seen[ch];
      for (let s = from; s <= c.max; s++) if (!c.set[s]) n++;
    }
    return n;
  }
}
