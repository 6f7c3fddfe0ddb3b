/**
 * The hub: which connections want which channel, and the fan-out itself.
 *
 * `dispatch` takes one message (already encoded once into a Buffer) and appends it to the queue of
 * every subscribed connection, marking each dirty. The flush runs once per event-loop turn
 * (setImmediate), so each connection gets everything it is owed in that turn in one corked write:
 * one syscall per connection per batch, not per message.
 */
import { namespaceOf } from '@fanout/protocol';
import { newCounters, type Connection, type DeliveryCounters } from './connection.js';
import type { Outgoing } from './outgoing.js';

export interface HubStats extends DeliveryCounters {
  /** Messages appended to connection queues. */
  enqueued: number;
  /** Flush rounds (event-loop turns with something to write). */
  flushes: number;
}

export class Hub {
  private readonly byChannel = new Map<string, Set<Connection>>();
  private readonly byNamespace = new Map<string, Set<Connection>>();
  private dirty: Connection[] = [];
  private flushScheduled = false;
  readonly connections = new Set<Connection>();
  /** Counters shared with every connection (they count writes, drops, stalls into it). */
  readonly stats: HubStats = { ...newCounters(), enqueued: 0, flushes: 0 };
  /** Called after every flush round (the memory budget uses it to resume promptly). */
  afterFlush: (() => void) | null = null;

  add(conn: Connection): void {
    this.connections.add(conn);
  }

  remove(conn: Connection): void {
    this.connections.delete(conn);
    for (const ch of conn.channels) this.unindex(this.byChannel, ch, conn);
    for (const ns of conn.namespaces) this.unindex(this.byNamespace, ns, conn);
    conn.channels.clear();
    conn.namespaces.clear();
  }

  /** Subscribes to channels or namespace wildcards (`ns` given for wildcards). */
  subscribe(conn: Connection, channel: string, namespace: string | null): void {
    if (namespace !== null) {
      if (conn.namespaces.has(namespace)) return;
      conn.namespaces.add(namespace);
      this.index(this.byNamespace, namespace, conn);
    } else {
      if (conn.channels.has(channel)) return;
      conn.channels.add(channel);
      this.index(this.byChannel, channel, conn);
    }
  }

  unsubscribe(conn: Connection, channel: string, namespace: string | null): void {
    if (namespace !== null) {
      if (conn.namespaces.delete(namespace)) this.unindex(this.byNamespace, namespace, conn);
    } else if (conn.channels.delete(channel)) {
      this.unindex(this.byChannel, channel, conn);
    }
  }

  /** True if anyone here wants the channel (lets the consumer skip encoding unwanted messages). */
  wants(channel: string): boolean {
    return this.byChannel.has(channel) || this.byNamespace.has(namespaceOf(channel));
  }

  /** Queues one message for every subscriber of its channel. Returns the number of recipients. */
  dispatch(o: Outgoing): number {
    let n = 0;
    const exact = this.byChannel.get(o.channel);
    if (exact) {
      for (const c of exact) {
        if (c.enqueue(o)) n += this.markDirty(c);
      }
    }
    const wild = this.byNamespace.get(namespaceOf(o.channel));
    if (wild) {
      for (const c of wild) {
        // A connection holding both `prices:*` and `prices:AAPL` gets the message once.
        if (exact?.has(c)) continue;
        if (c.enqueue(o)) n += this.markDirty(c);
      }
    }
    this.stats.enqueued += n;
    return n;
  }

  /** Flushes one connection now (the transport's drain event). */
  drain(conn: Connection): void {
    conn.flush();
    this.afterFlush?.();
  }

  /** Schedules a flush of one connection (after it was granted credits). */
  wake(conn: Connection): void {
    this.markDirty(conn);
  }

  get subscriptionCount(): number {
    let n = 0;
    for (const s of this.byChannel.values()) n += s.size;
    for (const s of this.byNamespace.values()) n += s.size;
    return n;
  }

  get channelCount(): number {
    return this.byChannel.size;
  }

  private markDirty(c: Connection): number {
    if (!c.dirty) {
      c.dirty = true;
      this.dirty.push(c);
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(this.flush);
      }
    }
    return 1;
  }

  /** Writes every dirty connection's queue, one corked batch each. */
  readonly flush = (): void => {
    this.flushScheduled = false;
    const list = this.dirty;
    this.dirty = [];
    for (const c of list) {
      c.dirty = false;
      c.flush();
    }
    this.stats.flushes++;
    this.afterFlush?.();
  };

  private index(map: Map<string, Set<Connection>>, key: string, conn: Connection): void {
    let set = map.get(key);
    if (!set) map.set(key, (set = new Set()));
    set.add(conn);
  }

  private unindex(map: Map<string, Set<Connection>>, key: string, conn: Connection): void {
    const set = map.get(key);
    if (!set) return;
    set.delete(conn);
    if (set.size === 0) map.delete(key);
  }
}
