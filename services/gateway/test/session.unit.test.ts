/** The session's protocol-error allowance, without sockets: errors per connection in a sliding 10 s. */
import { describe, expect, it } from 'vitest';
import { Connection, newCounters } from '../src/delivery/connection.js';
import { ErrorAllowance } from '../src/delivery/session.js';
import { MemorySink } from './memory-sink.js';

const connection = () =>
  new Connection(new MemorySink(), { socketBufferBytes: 1 << 20, queueMaxMessages: 100, queueMaxBytes: 1 << 20 }, newCounters(), null, 0);

describe('the protocol-error allowance', () => {
  it('is exceeded by the error after the allowance within 10 s, per connection', () => {
    const allowance = new ErrorAllowance(3);
    const a = connection();
    const b = connection();
    expect([0, 1, 2].map((t) => allowance.exceeded(a, t))).toEqual([false, false, false]);
    expect(allowance.exceeded(b, 3)).toBe(false);
    expect(allowance.exceeded(a, 9_999)).toBe(true);
  });

  it('forgets errors older than 10 s', () => {
    const allowance = new ErrorAllowance(2);
    const a = connection();
    expect(allowance.exceeded(a, 0)).toBe(false);
    expect(allowance.exceeded(a, 5_000)).toBe(false);
    expect(allowance.exceeded(a, 10_001)).toBe(false);
    expect(allowance.exceeded(a, 10_002)).toBe(true);
  });
});
