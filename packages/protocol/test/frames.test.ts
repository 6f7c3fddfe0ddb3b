import { describe, expect, it } from 'vitest';
import {
  parseClientFrame,
  isFrameError,
  parseChannel,
  parseNamespacePattern,
  parsePosition,
  formatPosition,
  validateEvent,
  FanoutError,
  encodeEnvelope,
  welcomeFrame,
  creditsFrame,
  pongFrame,
  subscriptionFrame,
  errorFrame,
  closeFrame,
  EPOCH_RE,
} from '@fanout/protocol';

describe('channel grammar', () => {
  it('accepts namespace:name and rejects everything else', () => {
    expect(parseChannel('prices:AAPL')).toEqual({ namespace: 'prices', name: 'AAPL' });
    expect(parseChannel('user:42')).toEqual({ namespace: 'user', name: '42' });
    for (const bad of ['', 'prices', ':AAPL', 'Prices:AAPL', 'prices:', 'prices:A A', 'prices:*', 'a:' + 'x'.repeat(201), 42, null]) {
      expect(parseChannel(bad), String(bad)).toBeNull();
    }
  });

  it('recognises namespace wildcards only in the form ns:*', () => {
    expect(parseNamespacePattern('prices:*')).toBe('prices');
    expect(parseNamespacePattern('prices:A*')).toBeNull();
    expect(parseNamespacePattern('*')).toBeNull();
  });
});

describe('positions', () => {
  it('round-trip and reject malformed cursors', () => {
    const p = { epoch: '1', partition: 3, offset: 1234 };
    expect(parsePosition(formatPosition(p))).toEqual(p);
    for (const bad of ['1:3', '1:x:3', ':1:2', '1:1:99999999999999999', 'a b:1:2']) expect(parsePosition(bad), bad).toBeNull();
  });

  it('take the epoch grammar of EPOCH_RE (FANOUT_STREAM_EPOCH)', () => {
    for (const epoch of ['1', 'e_1-x', 'a'.repeat(64), 'a'.repeat(65), 'a:b', 'a.b', ''])
      expect(parsePosition(`${epoch}:0:1`) !== null, epoch).toBe(EPOCH_RE.test(epoch));
  });
});

describe('client frames', () => {
  it('parses subscribe, unsubscribe and ping with request ids', () => {
    expect(parseClientFrame('{"op":"subscribe","id":1,"channels":["prices:AAPL","news:*"]}')).toEqual({
      op: 'subscribe',
      id: 1,
      channels: ['prices:AAPL', 'news:*'],
    });
    expect(parseClientFrame('{"op":"unsubscribe","channels":["prices:AAPL"]}')).toEqual({ op: 'unsubscribe', channels: ['prices:AAPL'] });
    expect(parseClientFrame('{"op":"ping","id":"a"}')).toEqual({ op: 'ping', id: 'a' });
  });

  it('gives a stable code for every malformed frame instead of throwing', () => {
    const cases: [string, string][] = [
      ['not json', 'bad_frame'],
      ['[1,2]', 'bad_frame'],
      ['{"channels":["a:b"]}', 'bad_frame'],
      ['{"op":"explode"}', 'unknown_op'],
      ['{"op":"subscribe","channels":[]}', 'bad_frame'],
      ['{"op":"subscribe","channels":"prices:AAPL"}', 'bad_frame'],
      ['{"op":"subscribe","channels":["no spaces:x"]}', 'invalid_channel'],
      ['{"op":"subscribe","id":{"x":1},"channels":["a:b"]}', 'bad_frame'],
    ];
    for (const [text, code] of cases) {
      const f = parseClientFrame(text);
      expect(isFrameError(f), text).toBe(true);
      if (isFrameError(f)) expect(f.code, text).toBe(code);
    }
  });

  it('echoes the request id on errors when it is readable', () => {
    const f = parseClientFrame('{"op":"nope","id":7}');
    expect(isFrameError(f) && f.id).toBe(7);
  });
});

describe('server frames', () => {
  it('are built with their fields in the documented order, the request id only when there is one', () => {
    const w = { node: 'gw-1', region: 'eu', heartbeatS: 32, maxFrameBytes: 4096, user: 'alice', credits: 100 };
    expect(welcomeFrame(w)).toBe(
      '{"t":"welcome","node":"gw-1","region":"eu","heartbeat_s":32,"max_frame_bytes":4096,"user":"alice","credits":100}',
    );
    expect(JSON.parse(welcomeFrame({ ...w, user: null, credits: Infinity }))).toMatchObject({ user: null, credits: 'unlimited' });
    expect(creditsFrame(7, 0)).toBe('{"t":"credits","id":7,"credits":0}');
    expect(creditsFrame('c', Infinity)).toBe('{"t":"credits","id":"c","credits":"unlimited"}');
    expect(pongFrame()).toBe('{"t":"pong"}');
    expect(pongFrame('p1')).toBe('{"t":"pong","id":"p1"}');
    expect(subscriptionFrame('subscribed', ['a:b', 'c:*'], 3)).toBe('{"t":"subscribed","id":3,"channels":["a:b","c:*"]}');
    expect(subscriptionFrame('unsubscribed', ['a:b'])).toBe('{"t":"unsubscribed","channels":["a:b"]}');
    expect(closeFrame(4000, 'service restart')).toBe('{"t":"close","code":4000,"reason":"service restart"}');
    expect(JSON.parse(errorFrame('unknown_op', undefined, 2))).toMatchObject({ t: 'error', code: 'unknown_op', id: 2 });
  });
});

describe('events', () => {
  it('generates an id when absent and keeps a given one', () => {
    expect(validateEvent({ channel: 'news:x', data: 1 }).id).toMatch(/^[0-9a-f-]{36}$/);
    expect(validateEvent({ channel: 'news:x', data: null, id: 'evt-1' })).toEqual({ channel: 'news:x', id: 'evt-1', dataJson: 'null' });
  });

  it('refuses bad channels, ids, unknown fields, missing data and oversize data with stable codes', () => {
    const code = (input: unknown, max?: number) => {
      try {
        validateEvent(input, max);
        return 'ok';
      } catch (e) {
        return (e as FanoutError).code;
      }
    };
    expect(code({ channel: 'bad', data: 1 })).toBe('invalid_channel');
    expect(code({ channel: 'news:x', data: 1, id: 'has space' })).toBe('invalid_event_id');
    expect(code({ channel: 'news:x', data: 1, extra: true })).toBe('invalid_event');
    expect(code({ channel: 'news:x' })).toBe('invalid_event');
    expect(code('string')).toBe('invalid_event');
    expect(code({ channel: 'news:x', data: 'x'.repeat(100) }, 50)).toBe('payload_too_large');
  });
});

describe('envelope', () => {
  it('is valid JSON with the data spliced in unchanged', () => {
    const text = encodeEnvelope({
      channel: 'prices:AAPL',
      eventId: 'e"1',
      position: '1:0:5',
      publishedAt: 1700000000000,
      dataJson: '{"bid":1.5}',
    });
    expect(JSON.parse(text)).toEqual({ t: 'msg', ch: 'prices:AAPL', id: 'e"1', pos: '1:0:5', ts: 1700000000000, data: { bid: 1.5 } });
  });
});
