/**
 * One connection's queue and credits, driven through an in-memory sink: no Kafka, no sockets.
 * Each test asserts the exact frames the client would see (MemorySink.take names them
 * `channel@offset` and `gap channel from..to xcount`).
 */
import { describe, expect, it } from 'vitest';
import { CLOSE } from '@fanout/protocol';
import { Connection, newCounters, type ConnectionLimits } from '../src/delivery/connection.js';
import { MemoryBudget } from '../src/delivery/memory-budget.js';
import { WriteResult } from '../src/delivery/sink.js';
import { msg, msgs } from './delivery-messages.js';
import { MemorySink } from './memory-sink.js';

const ROOMY: ConnectionLimits = { socketBufferBytes: 1 << 30, queueMaxMessages: 1_000_000, queueMaxBytes: 1 << 30 };

function setup(o: { credits?: number; limits?: Partial<ConnectionLimits>; budget?: MemoryBudget } = {}) {
  const sink = new MemorySink();
  const counters = newCounters();
  const conn = new Connection(sink, { ...ROOMY, ...o.limits }, counters, o.budget ?? null, o.credits ?? Infinity);
  const enqueue = (...list: ReturnType<typeof msg>[]) => list.map((m) => conn.enqueue(m));
  return { sink, counters, conn, enqueue };
}

/** The size of a `news:a` message with a one-digit offset (all of them are this size). */
const SIZE = msg('news:a', 1).bytes;
/** What these messages count in a queue, in bytes. */
const bytesOf = (...list: ReturnType<typeof msg>[]) => list.reduce((n, m) => n + m.bytes, 0);

describe('writing', () => {
  it('writes everything queued in one corked batch, in order', () => {
    const { sink, counters, conn, enqueue } = setup();
    expect(enqueue(...msgs('news:a', 1, 3))).toEqual([true, true, true]);
    expect(conn.queuedMessages).toBe(3);
    expect(conn.queuedByteCount).toBe(3 * SIZE);
    expect(conn.flush()).toBe(3);
    expect(sink.take()).toEqual(['news:a@1', 'news:a@2', 'news:a@3']);
    expect(sink.batches).toEqual([3]);
    expect(counters.written).toBe(3);
    expect(conn.queuedMessages).toBe(0);
    expect(conn.queuedByteCount).toBe(0);
    expect(conn.blocked).toBe(false);
  });

  it('does not touch the socket when there is nothing to write', () => {
    const { sink, conn } = setup();
    expect(conn.flush()).toBe(0);
    expect(sink.batches).toEqual([]);
  });

  it('sends control frames at once, past the queue and without spending credits', () => {
    const { sink, conn, enqueue } = setup({ credits: 0 });
    enqueue(msg('news:a', 1));
    conn.sendControl('{"t":"pong"}');
    expect(sink.take()).toEqual(['{"t":"pong"}']);
    expect(conn.credits).toBe(0);
    expect(conn.queuedMessages).toBe(1);
  });

  it('refuses messages and writes nothing once closed', () => {
    const { sink, conn, enqueue } = setup();
    enqueue(msg('news:a', 1));
    conn.markClosed();
    expect(conn.queuedMessages).toBe(0);
    expect(enqueue(msg('news:a', 2))).toEqual([false]);
    expect(conn.flush()).toBe(0);
    conn.sendControl('{"t":"pong"}');
    expect(sink.frames).toEqual([]);
    expect(sink.closedWith).toBeNull();
  });
});

describe('credits', () => {
  it('stops at zero credits, counts the stall, and goes on in order when granted more', () => {
    const { sink, counters, conn, enqueue } = setup({ credits: 2 });
    enqueue(...msgs('news:a', 1, 5));
    expect(conn.flush()).toBe(2);
    expect(sink.take()).toEqual(['news:a@1', 'news:a@2']);
    expect(counters.creditStalls).toBe(1);
    expect(conn.blocked).toBe(true);
    expect(conn.queuedMessages).toBe(3);

    expect(conn.grant(2, 100)).toBe(true);
    expect(conn.flush()).toBe(2);
    expect(sink.take()).toEqual(['news:a@3', 'news:a@4']);
    expect(conn.grant(10, 100)).toBe(true);
    expect(conn.flush()).toBe(1);
    expect(sink.take()).toEqual(['news:a@5']);
    expect(conn.credits).toBe(9);
    expect(conn.blocked).toBe(false);
    expect(counters.creditStalls).toBe(2);
  });

  it('caps credits at the maximum, and reports a grant as a wake-up only when messages wait for it', () => {
    const { conn, enqueue } = setup({ credits: 0 });
    expect(conn.grant(5, 3)).toBe(false);
    expect(conn.credits).toBe(3);
    expect(conn.grant(5, 3)).toBe(false);
    expect(conn.credits).toBe(3);
    conn.credits = 0;
    enqueue(msg('news:a', 1));
    expect(conn.grant(1, 3)).toBe(true);
  });

  it('leaves unlimited credits unlimited', () => {
    const { conn } = setup();
    conn.grant(5, 10);
    expect(conn.credits).toBe(Infinity);
  });
});

describe('socket buffer', () => {
  it('stops writing once the socket holds socketBufferBytes, and writes the rest after drain', () => {
    const { sink, counters, conn, enqueue } = setup({ limits: { socketBufferBytes: 2 * SIZE } });
    enqueue(...msgs('news:a', 1, 5));
    expect(conn.flush()).toBe(2);
    expect(sink.take()).toEqual(['news:a@1', 'news:a@2']);
    expect(counters.socketStalls).toBe(1);
    expect(conn.blocked).toBe(true);
    expect(conn.flush()).toBe(0);
    sink.drained();
    expect(conn.flush()).toBe(2);
    sink.drained();
    expect(conn.flush()).toBe(1);
    expect(sink.take()).toEqual(['news:a@3', 'news:a@4', 'news:a@5']);
  });

  it('stops after a write that reports backpressure, counting that message as sent', () => {
    const { sink, counters, conn, enqueue } = setup();
    enqueue(...msgs('news:a', 1, 3));
    sink.script.push(WriteResult.Ok, WriteResult.Backpressure);
    expect(conn.flush()).toBe(2);
    expect(sink.take()).toEqual(['news:a@1', 'news:a@2']);
    expect(counters.socketStalls).toBe(1);
    expect(conn.queuedMessages).toBe(1);
  });

  it('keeps a message the socket refused and writes it first next time', () => {
    const { sink, conn, enqueue } = setup();
    enqueue(...msgs('news:a', 1, 3));
    sink.script.push(WriteResult.Ok, WriteResult.Dropped);
    expect(conn.flush()).toBe(1);
    expect(conn.flush()).toBe(2);
    expect(sink.take()).toEqual(['news:a@1', 'news:a@2', 'news:a@3']);
  });
});

describe('drop policy', () => {
  it('drops the oldest beyond queueMaxMessages and sends the range missed ahead of anything newer', () => {
    const { sink, counters, conn, enqueue } = setup({ credits: 0, limits: { queueMaxMessages: 3 } });
    enqueue(...msgs('news:a', 1, 6));
    expect(conn.flush()).toBe(0);
    expect(counters.dropped).toBe(3);
    expect(conn.queuedMessages).toBe(3);
    expect(conn.queuedByteCount).toBe(3 * SIZE);
    expect(sink.frames).toEqual([]); // the gap goes at the next flush
    conn.grant(10, 10);
    conn.flush();
    expect(sink.take()).toEqual(['gap news:a 1..3 x3', 'news:a@4', 'news:a@5', 'news:a@6']);
  });

  it('sends the gap notice without credits', () => {
    const { sink, conn, enqueue } = setup({ credits: 0, limits: { queueMaxMessages: 1 } });
    enqueue(...msgs('news:a', 1, 2));
    conn.flush();
    expect(conn.flush()).toBe(0);
    expect(sink.take()).toEqual(['gap news:a 1..1 x1']);
    expect(conn.queuedMessages).toBe(1);
  });

  it('keeps one range per channel and extends it while the notice cannot be sent', () => {
    const { sink, conn, enqueue } = setup({ credits: 0, limits: { queueMaxMessages: 2, socketBufferBytes: 1024 } });
    enqueue(msg('news:a', 1), msg('news:b', 1), msg('news:a', 2), msg('news:a', 3));
    conn.flush(); // drops news:a@1 and news:b@1
    sink.buffered = 1024; // the socket is full: the notices wait
    enqueue(msg('news:a', 4));
    conn.flush(); // drops news:a@2
    expect(sink.frames).toEqual([]);
    sink.drained();
    conn.grant(10, 10);
    conn.flush();
    expect(sink.take()).toEqual(['gap news:a 1..2 x2', 'gap news:b 1..1 x1', 'news:a@3', 'news:a@4']);
  });

  it('bounds the queued bytes too', () => {
    const { counters, conn, enqueue } = setup({ credits: 0, limits: { queueMaxBytes: Math.floor(2.5 * SIZE) } });
    enqueue(...msgs('news:a', 1, 5));
    conn.flush();
    expect(counters.dropped).toBe(3);
    expect(conn.queuedByteCount).toBe(2 * SIZE);
  });

  it('never counts a burst written in the same flush against the bounds', () => {
    const { counters, conn, enqueue } = setup({ limits: { queueMaxMessages: 2 } });
    enqueue(...msgs('news:a', 1, 9));
    expect(conn.flush()).toBe(9);
    expect(counters.dropped).toBe(0);
  });
});

describe('conflate policy', () => {
  it('while blocked, replaces the queued message of the same channel with the newer one, at the newer place', () => {
    const { sink, counters, conn, enqueue } = setup({ credits: 0 });
    enqueue(msg('prices:a', 1), msg('prices:b', 2), msg('prices:a', 3), msg('prices:a', 4));
    expect(counters.conflated).toBe(2);
    expect(conn.queuedMessages).toBe(2);
    expect(conn.queuedByteCount).toBe(bytesOf(msg('prices:b', 2), msg('prices:a', 4)));
    conn.grant(10, 10);
    conn.flush();
    expect(sink.take()).toEqual(['prices:b@2', 'prices:a@4']);
  });

  it('sends every message while the connection keeps up', () => {
    const { sink, counters, conn, enqueue } = setup();
    enqueue(...msgs('prices:a', 1, 3));
    conn.flush();
    expect(sink.take()).toEqual(['prices:a@1', 'prices:a@2', 'prices:a@3']);
    expect(counters.conflated).toBe(0);
  });

  it('once a flush left messages queued, conflates what is queued from then on, though credits remain', () => {
    const { sink, counters, conn, enqueue } = setup({ limits: { socketBufferBytes: SIZE } });
    enqueue(msg('prices:a', 1), msg('prices:a', 2));
    conn.flush(); // prices:a@1 fills the socket
    expect(conn.blocked).toBe(true);
    // @2 was queued while the connection kept up, so it is not tracked for conflation and still goes;
    // @3 is queued while blocked and is replaced by @4.
    enqueue(msg('prices:a', 3), msg('prices:a', 4));
    expect(counters.conflated).toBe(1);
    sink.drained();
    conn.flush();
    sink.drained();
    conn.flush();
    expect(sink.take()).toEqual(['prices:a@1', 'prices:a@2', 'prices:a@4']);
  });

  it('conflates per value of the key field when the namespace names one', () => {
    const { sink, conn, enqueue } = setup({ credits: 0 });
    enqueue(
      msg('ticks:x', 1, { sym: 'A' }),
      msg('ticks:x', 2, { sym: 'B' }),
      msg('ticks:x', 3, { sym: 'A' }),
      msg('ticks:x', 4, {}),
      msg('ticks:x', 5, {}),
    );
    conn.grant(10, 10);
    conn.flush();
    expect(sink.take()).toEqual(['ticks:x@2', 'ticks:x@3', 'ticks:x@5']);
  });

  it('drops the oldest with a gap notice when conflation leaves the queue over its bound', () => {
    const { sink, counters, conn, enqueue } = setup({ credits: 0, limits: { queueMaxMessages: 2 } });
    enqueue(msg('prices:a', 1), msg('prices:b', 2), msg('prices:c', 3));
    conn.flush();
    expect(counters.dropped).toBe(1);
    conn.grant(10, 10);
    conn.flush();
    expect(sink.take()).toEqual(['gap prices:a 1..1 x1', 'prices:b@2', 'prices:c@3']);
  });
});

describe('disconnect policy', () => {
  it('closes a slow consumer with 4001 when the queue is over its bound and nothing may be dropped', () => {
    const { sink, counters, conn, enqueue } = setup({ credits: 0, limits: { queueMaxMessages: 2 } });
    enqueue(...msgs('orders:a', 1, 3));
    expect(conn.flush()).toBe(0);
    expect(sink.closedWith).toEqual({ code: CLOSE.SLOW_CONSUMER.code, reason: CLOSE.SLOW_CONSUMER.reason });
    expect(sink.closedWith?.code).toBe(4001);
    expect(conn.closed).toBe(true);
    expect(counters.slowConsumerCloses).toBe(1);
    expect(counters.dropped).toBe(0);
    expect(conn.queuedMessages).toBe(0);
    expect(conn.queuedByteCount).toBe(0);
    expect(sink.frames).toEqual([]);
    expect(enqueue(msg('orders:a', 4))).toEqual([false]);
  });

  it('drops messages of other policies first, even newer ones, to keep those that must not be lost', () => {
    const { sink, counters, conn, enqueue } = setup({ credits: 0, limits: { queueMaxMessages: 2 } });
    enqueue(msg('orders:a', 1), msg('orders:a', 2), msg('news:a', 7));
    conn.flush();
    expect(conn.closed).toBe(false);
    expect(counters.dropped).toBe(1);
    conn.grant(10, 10);
    conn.flush();
    expect(sink.take()).toEqual(['gap news:a 7..7 x1', 'orders:a@1', 'orders:a@2']);
  });
});

describe('shedding (memory budget)', () => {
  it('drops every droppable message with a gap notice and keeps the connection', () => {
    const { sink, counters, conn, enqueue } = setup({ credits: 0 });
    const queued = [...msgs('news:a', 1, 3), msg('prices:a', 4)];
    enqueue(...queued);
    expect(conn.shed()).toBe(bytesOf(...queued));
    expect(conn.closed).toBe(false);
    expect(conn.queuedMessages).toBe(0);
    expect(counters.dropped).toBe(4);
    conn.flush();
    expect(sink.take()).toEqual(['gap news:a 1..3 x3', 'gap prices:a 4..4 x1']);
  });

  it('closes the connection as a slow consumer when what remains may not be dropped', () => {
    const { sink, counters, conn, enqueue } = setup({ credits: 0 });
    const queued = [msg('orders:a', 1), msg('news:a', 2)];
    enqueue(...queued);
    expect(conn.shed()).toBe(bytesOf(...queued));
    expect(sink.closedWith?.code).toBe(CLOSE.SLOW_CONSUMER.code);
    expect(counters.slowConsumerCloses).toBe(1);
  });
});

describe('memory budget accounting', () => {
  it('adds what it queues to the budget and gives it back when written, dropped or closed', () => {
    const budget = new MemoryBudget({
      maxBytes: 1 << 30,
      lowWater: 0.5,
      shedAfterMs: 1000,
      pause: () => {},
      resume: () => {},
      connections: () => [],
    });
    const { conn, enqueue } = setup({ credits: 1, budget, limits: { queueMaxMessages: 3 } });
    enqueue(...msgs('news:a', 1, 5));
    expect(budget.used).toBe(5 * SIZE);
    conn.flush(); // one written, one dropped to fit 3
    expect(budget.used).toBe(3 * SIZE);
    enqueue(msg('prices:a', 6), msg('prices:a', 7)); // conflated: one replaces the other
    expect(budget.used).toBe(3 * SIZE + bytesOf(msg('prices:a', 7)));
    conn.closeWith(CLOSE.SLOW_CONSUMER.code, CLOSE.SLOW_CONSUMER.reason);
    expect(budget.used).toBe(0);
  });
});

describe('catch-up', () => {
  it('holds live messages of a resuming channel and queues them after the replay, each once, in order', () => {
    const { sink, conn, enqueue } = setup();
    conn.beginCatchUp('news:a');
    expect(enqueue(msg('news:a', 5), msg('news:a', 6), msg('news:b', 1), msg('news:a', 7))).toEqual([false, false, true, false]);
    conn.endCatchUp('news:a', msgs('news:a', 3, 3), 5);
    conn.flush();
    expect(sink.take()).toEqual(['news:b@1', 'news:a@3', 'news:a@4', 'news:a@5', 'news:a@6', 'news:a@7']);
    expect(enqueue(msg('news:a', 8))).toEqual([true]);
  });

  it('does not send again what the client already has', () => {
    const { sink, conn, enqueue } = setup();
    conn.alreadyHas('news:a', 4);
    expect(enqueue(msg('news:a', 3), msg('news:a', 4), msg('news:b', 1), msg('news:a', 5), msg('news:a', 6))).toEqual([
      false,
      false,
      true,
      true,
      true,
    ]);
    conn.flush();
    expect(sink.take()).toEqual(['news:b@1', 'news:a@5', 'news:a@6']);
  });
});

describe('queue compaction', () => {
  it('conflation still finds the queued message after the written head of the queue is cut off', () => {
    const { sink, counters, conn, enqueue } = setup({ credits: 0 });
    enqueue(...msgs('news:a', 0, 1100), msg('prices:p', 0), ...msgs('news:a', 1100, 100));
    conn.grant(1100, 1e6);
    expect(conn.flush()).toBe(1100); // the head passes 1024 and more than half the slots: compacted
    sink.take();
    enqueue(msg('prices:p', 1));
    expect(counters.conflated).toBe(1);
    conn.grant(1000, 1e6);
    expect(conn.flush()).toBe(101);
    const frames = sink.take();
    expect(frames.slice(0, 2)).toEqual(['news:a@1100', 'news:a@1101']);
    expect(frames.slice(-2)).toEqual(['news:a@1199', 'prices:p@1']);
    expect(frames).not.toContain('prices:p@0');
    expect(conn.queuedMessages).toBe(0);
  });

  it('starts afresh once the queue is empty: old conflation entries never match new messages', () => {
    const { sink, counters, conn, enqueue } = setup({ credits: 0 });
    enqueue(msg('prices:p', 1));
    conn.grant(1, 10);
    conn.flush(); // empty again, credits 0
    enqueue(msg('news:a', 2), msg('prices:p', 3), msg('prices:p', 4));
    expect(counters.conflated).toBe(1);
    conn.grant(10, 10);
    conn.flush();
    expect(sink.take()).toEqual(['prices:p@1', 'news:a@2', 'prices:p@4']);
  });
});
