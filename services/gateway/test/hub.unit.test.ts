/**
 * The hub's subscriptions and fan-out, with connections on in-memory sinks. The flush that the
 * hub schedules once per event-loop turn (setImmediate) runs on fake timers, so "not before the
 * turn ends" and "once per turn" are exact.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Connection } from '../src/delivery/connection.js';
import { Hub } from '../src/delivery/hub.js';
import { msg } from './delivery-messages.js';
import { MemorySink } from './memory-sink.js';

const LIMITS = { socketBufferBytes: 1 << 30, queueMaxMessages: 1000, queueMaxBytes: 1 << 30 };

let hub: Hub;
beforeEach(() => {
  vi.useFakeTimers();
  hub = new Hub();
});
afterEach(() => {
  vi.useRealTimers();
});

function connect(credits = Infinity): { conn: Connection; sink: MemorySink } {
  const sink = new MemorySink();
  const conn = new Connection(sink, LIMITS, hub.stats, null, credits);
  hub.add(conn);
  return { conn, sink };
}

/** Ends the event-loop turn: runs the flush the hub scheduled. */
const endTurn = () => vi.runOnlyPendingTimers();

describe('hub', () => {
  it('delivers a message to the subscribers of its channel only, and counts them', () => {
    const a = connect();
    const b = connect();
    const c = connect();
    hub.subscribe(a.conn, 'news:x', null);
    hub.subscribe(b.conn, 'news:x', null);
    hub.subscribe(c.conn, 'news:y', null);
    expect(hub.dispatch(msg('news:x', 1))).toBe(2);
    expect(hub.dispatch(msg('news:z', 1))).toBe(0);
    endTurn();
    expect(a.sink.take()).toEqual(['news:x@1']);
    expect(b.sink.take()).toEqual(['news:x@1']);
    expect(c.sink.take()).toEqual([]);
    expect(hub.stats.enqueued).toBe(2);
    expect(hub.stats.written).toBe(2);
  });

  it('writes what a turn dispatched at the end of the turn, in one corked batch per connection', () => {
    const a = connect();
    const b = connect();
    hub.subscribe(a.conn, 'news:x', null);
    hub.subscribe(b.conn, 'news:x', null);
    hub.subscribe(b.conn, 'news:y', null);
    hub.dispatch(msg('news:x', 1));
    hub.dispatch(msg('news:y', 1));
    hub.dispatch(msg('news:x', 2));
    expect(a.sink.frames).toEqual([]);
    expect(hub.stats.flushes).toBe(0);
    endTurn();
    expect(hub.stats.flushes).toBe(1);
    expect(a.sink.batches).toEqual([2]);
    expect(b.sink.batches).toEqual([3]);
    expect(b.sink.take()).toEqual(['news:x@1', 'news:y@1', 'news:x@2']);
  });

  it('delivers every channel of a namespace to a wildcard subscriber, and once to one that also holds the channel', () => {
    const wild = connect();
    const both = connect();
    hub.subscribe(wild.conn, 'prices:*', 'prices');
    hub.subscribe(both.conn, 'prices:*', 'prices');
    hub.subscribe(both.conn, 'prices:a', null);
    expect(hub.dispatch(msg('prices:a', 1))).toBe(2);
    expect(hub.dispatch(msg('prices:b', 2))).toBe(2);
    expect(hub.dispatch(msg('pricesx:a', 3))).toBe(0);
    endTurn();
    expect(wild.sink.take()).toEqual(['prices:a@1', 'prices:b@2']);
    expect(both.sink.take()).toEqual(['prices:a@1', 'prices:b@2']);
  });

  it('answers whether anyone here wants a channel, by name or by namespace', () => {
    const a = connect();
    expect(hub.wants('news:x')).toBe(false);
    hub.subscribe(a.conn, 'news:x', null);
    hub.subscribe(a.conn, 'prices:*', 'prices');
    expect(hub.wants('news:x')).toBe(true);
    expect(hub.wants('news:y')).toBe(false);
    expect(hub.wants('prices:anything')).toBe(true);
  });

  it('counts a repeated subscription once', () => {
    const a = connect();
    hub.subscribe(a.conn, 'news:x', null);
    hub.subscribe(a.conn, 'news:x', null);
    hub.subscribe(a.conn, 'prices:*', 'prices');
    hub.subscribe(a.conn, 'prices:*', 'prices');
    expect(hub.subscriptionCount).toBe(2);
    expect(hub.channelCount).toBe(1);
    expect(hub.dispatch(msg('news:x', 1))).toBe(1);
  });

  it('stops delivering after unsubscribe, and forgets a channel nobody holds', () => {
    const a = connect();
    const b = connect();
    hub.subscribe(a.conn, 'news:x', null);
    hub.subscribe(b.conn, 'news:x', null);
    hub.subscribe(a.conn, 'prices:*', 'prices');
    hub.unsubscribe(a.conn, 'news:x', null);
    hub.unsubscribe(a.conn, 'prices:*', 'prices');
    expect(hub.dispatch(msg('news:x', 1))).toBe(1);
    expect(hub.dispatch(msg('prices:a', 1))).toBe(0);
    hub.unsubscribe(b.conn, 'news:x', null);
    expect(hub.channelCount).toBe(0);
    expect(hub.wants('news:x')).toBe(false);
    endTurn();
    expect(a.sink.take()).toEqual([]);
  });

  it('drops every subscription of a removed connection', () => {
    const a = connect();
    hub.subscribe(a.conn, 'news:x', null);
    hub.subscribe(a.conn, 'prices:*', 'prices');
    hub.remove(a.conn);
    expect(hub.connections.size).toBe(0);
    expect(hub.subscriptionCount).toBe(0);
    expect(a.conn.channels.size + a.conn.namespaces.size).toBe(0);
    expect(hub.dispatch(msg('news:x', 1))).toBe(0);
  });

  it('does not count a closed connection as a recipient', () => {
    const a = connect();
    hub.subscribe(a.conn, 'news:x', null);
    a.conn.markClosed();
    expect(hub.dispatch(msg('news:x', 1))).toBe(0);
    expect(hub.stats.enqueued).toBe(0);
  });

  it('writes what waited for credits at the end of the turn it is woken in', () => {
    const a = connect(0);
    hub.subscribe(a.conn, 'news:x', null);
    hub.dispatch(msg('news:x', 1));
    endTurn();
    expect(a.sink.frames).toEqual([]);
    expect(a.conn.grant(5, 10)).toBe(true);
    hub.wake(a.conn);
    expect(a.sink.frames).toEqual([]);
    endTurn();
    expect(a.sink.take()).toEqual(['news:x@1']);
  });

  it('flushes a drained connection at once and tells the memory budget after every flush', () => {
    let afterFlush = 0;
    hub.afterFlush = () => afterFlush++;
    const a = connect();
    hub.subscribe(a.conn, 'news:x', null);
    a.sink.buffered = LIMITS.socketBufferBytes; // the socket is full
    hub.dispatch(msg('news:x', 1));
    endTurn();
    expect(afterFlush).toBe(1);
    expect(a.sink.frames).toEqual([]);
    a.sink.drained();
    hub.drain(a.conn);
    expect(a.sink.take()).toEqual(['news:x@1']);
    expect(afterFlush).toBe(2);
  });
});
