/** Reading the gateway's frames and writing the client's, without a socket. */
import { describe, expect, it } from 'vitest';
import { readFrame } from '../src/incoming.js';
import { creditFrame, PING_FRAME, subscribeFrames, unsubscribeFrames } from '../src/outgoing.js';

describe('incoming frames', () => {
  it('ignores text that is not a JSON object', () => {
    for (const text of ['', 'not json', 'null', '42', '"msg"']) expect(readFrame(text), text).toBeNull();
    expect(readFrame('[]')).toEqual({ t: 'other' });
  });

  it('reads a message, with defaults for what it lacks', () => {
    expect(readFrame('{"t":"msg","ch":"a:x","data":{"v":1},"id":"e1","pos":"1:0:5","ts":7}')).toEqual({
      t: 'msg',
      ch: 'a:x',
      data: { v: 1 },
      id: 'e1',
      pos: '1:0:5',
      ts: 7,
    });
    expect(readFrame('{"t":"msg","ch":3,"id":12,"pos":5,"ts":"x"}')).toEqual({
      t: 'msg',
      ch: undefined,
      data: undefined,
      id: '12',
      pos: undefined,
      ts: 0,
    });
  });

  it('reads a welcome, keeping only usable heartbeat and frame limits', () => {
    expect(
      readFrame('{"t":"welcome","node":"gw-1","region":"eu","heartbeat_s":32,"max_frame_bytes":4096,"user":"alice","credits":100}'),
    ).toEqual({ t: 'welcome', node: 'gw-1', region: 'eu', heartbeatS: 32, maxFrameBytes: 4096, user: 'alice', credits: 100 });
    expect(readFrame('{"t":"welcome","heartbeat_s":0,"max_frame_bytes":255,"credits":"lots"}')).toEqual({
      t: 'welcome',
      node: '',
      region: '',
      heartbeatS: undefined,
      maxFrameBytes: undefined,
      user: null,
      credits: 'unlimited',
    });
  });

  it('reads answers to requests by their numeric id', () => {
    expect(readFrame('{"t":"subscribed","id":3,"channels":["a:x",5,"b:*"]}')).toEqual({ t: 'subscribed', id: 3, channels: ['a:x', 'b:*'] });
    expect(readFrame('{"t":"subscribed","id":"3"}')).toEqual({ t: 'subscribed', id: undefined, channels: [] });
    expect(readFrame('{"t":"unsubscribed","id":4}')).toEqual({ t: 'unsubscribed', id: 4, channels: undefined });
    expect(readFrame('{"t":"error","id":5,"code":"invalid_channel","message":"no"}')).toEqual({
      t: 'error',
      id: 5,
      code: 'invalid_channel',
      message: 'no',
    });
    expect(readFrame('{"t":"error"}')).toEqual({ t: 'error', id: undefined, code: 'unknown', message: '' });
  });

  it("reads a reconnect frame's delay only when it is a non-negative number", () => {
    expect(readFrame('{"t":"reconnect","reason":"shutdown","delay_ms":1500.4}')).toEqual({
      t: 'reconnect',
      reason: 'shutdown',
      delayMs: 1500,
    });
    expect(readFrame('{"t":"reconnect","delay_ms":-1}')).toEqual({ t: 'reconnect', reason: 'unspecified', delayMs: undefined });
    expect(readFrame('{"t":"reconnect"}')).toEqual({ t: 'reconnect', reason: 'unspecified', delayMs: undefined });
  });

  it('reads reset, gap and close, and treats those without a channel as unknown', () => {
    expect(readFrame('{"t":"reset","ch":"a:x","reason":"beyond_replay_limit","position":"1:2:19"}')).toEqual({
      t: 'reset',
      ch: 'a:x',
      reason: 'beyond_replay_limit',
      position: '1:2:19',
    });
    expect(readFrame('{"t":"reset","ch":"a:x","pos":"1:2:19"}')).toEqual({
      t: 'reset',
      ch: 'a:x',
      reason: 'unspecified',
      position: '1:2:19',
    });
    expect(readFrame('{"t":"reset"}')).toEqual({ t: 'other' });
    expect(readFrame('{"t":"gap","ch":"a:x","from":"1:0:3","to":"1:0:9","count":7}')).toEqual({
      t: 'gap',
      ch: 'a:x',
      from: '1:0:3',
      to: '1:0:9',
      count: 7,
    });
    expect(readFrame('{"t":"gap","ch":1}')).toEqual({ t: 'other' });
    expect(readFrame('{"t":"close","code":4000,"reason":"service restart"}')).toEqual({
      t: 'close',
      code: 4000,
      reason: 'service restart',
    });
    expect(readFrame('{"t":"close"}')).toEqual({ t: 'close', code: 1006, reason: '' });
    for (const t of ['pong', 'credits', 'from-the-future']) expect(readFrame(JSON.stringify({ t })), t).toEqual({ t: 'other' });
  });
});

describe('outgoing frames', () => {
  it('subscribes with the positions it has, never for a pattern', () => {
    const positions: Record<string, string> = { 'a:x': '1:0:5', 'b:*': '1:0:1' };
    const frames = subscribeFrames(['a:x', 'a:y', 'b:*'], (ch) => positions[ch], 4096, 7);
    expect(frames).toHaveLength(1);
    expect(frames[0]).toMatchObject({ id: 7, channels: ['a:x', 'a:y', 'b:*'], withPositions: ['a:x'] });
    expect(JSON.parse(frames[0]!.text)).toEqual({ op: 'subscribe', id: 7, channels: ['a:x', 'a:y', 'b:*'], positions: { 'a:x': '1:0:5' } });
    expect(JSON.parse(subscribeFrames(['a:y'], () => undefined, 4096, 1)[0]!.text)).toEqual({ op: 'subscribe', id: 1, channels: ['a:y'] });
  });

  it('splits at 100 channels and at the frame size, numbering frames in order', () => {
    const many = Array.from({ length: 250 }, (_, i) => `a:c${i}`);
    const byCount = subscribeFrames(many, () => undefined, 1_000_000, 10);
    expect(byCount.map((f) => [f.id, f.channels.length])).toEqual([
      [10, 100],
      [11, 100],
      [12, 50],
    ]);
    expect(byCount.flatMap((f) => f.channels)).toEqual(many);
    const bySize = subscribeFrames(many, () => '1:0:123456', 512, 1);
    for (const f of bySize) expect(f.text.length).toBeLessThanOrEqual(512);
    expect(bySize.flatMap((f) => f.channels)).toEqual(many);
  });

  it('unsubscribes 100 channels a frame, and writes credits and pings', () => {
    const many = Array.from({ length: 150 }, (_, i) => `a:c${i}`);
    const frames = unsubscribeFrames(many, 3);
    expect(frames.map((f) => f.id)).toEqual([3, 4]);
    expect(JSON.parse(frames[1]!.text)).toEqual({ op: 'unsubscribe', id: 4, channels: many.slice(100) });
    expect(JSON.parse(creditFrame(500))).toEqual({ op: 'credit', n: 500 });
    expect(JSON.parse(PING_FRAME)).toEqual({ op: 'ping' });
  });
});
