/** Error answers: the registry's status and body, and the headers a refusal carries. */
import { describe, expect, it } from 'vitest';
import { FanoutError } from '@fanout/protocol';
import { asFanoutError, rateLimited, refusalHeaders } from '../src/index.js';

describe('refusal headers', () => {
  it('say when to retry a 503 or a 429, and which methods a 405 route takes', () => {
    expect(refusalHeaders(new FanoutError('not_ready'), { retryAfterS: 3, allow: 'POST' })).toEqual({ 'retry-after': '3' });
    expect(refusalHeaders(rateLimited(2500, 'This key', 'FANOUT_X'), { retryAfterS: 3 })).toEqual({ 'retry-after': '3' });
    expect(refusalHeaders(new FanoutError('method_not_allowed'), { retryAfterS: 1, allow: 'GET, POST' })).toEqual({ allow: 'GET, POST' });
    expect(refusalHeaders(new FanoutError('method_not_allowed'), { retryAfterS: 1 })).toEqual({});
    expect(refusalHeaders(new FanoutError('invalid_json'), { retryAfterS: 1, allow: 'POST' })).toEqual({});
  });

  it('unknown errors are internal, with the registry status', () => {
    const e = asFanoutError(new Error('boom'));
    expect([e.code, e.status, e.retriable]).toEqual(['internal', 500, true]);
  });
});
