import { describe, expect, it } from 'vitest';
import { compareOffsets, cursorFromPositions, parsePosition, PositionTracker } from '@fanout/client';

describe('positions and dedupe', () => {
  it('parses positions and compares offsets beyond 2^53 exactly', () => {
    expect(parsePosition('1:3:42')).toEqual({ epoch: '1', partition: 3, offset: '42' });
    expect(parsePosition('ep-2:0:007')).toEqual({ epoch: 'ep-2', partition: 0, offset: '7' });
    for (const bad of ['', '1:2', '1:2:x', 'a b:1:2', 42, null]) expect(parsePosition(bad)).toBeNull();
    expect(compareOffsets('9007199254740993', '9007199254740992')).toBe(1);
    expect(compareOffsets('99', '100')).toBe(-1);
    expect(compareOffsets('100', '100')).toBe(0);
  });

  it('drops a message at or before the last offset of the same epoch and partition', () => {
    const t = new PositionTracker();
    expect(t.accept('a:x', '1:0:10')).toBe(true);
    expect(t.accept('a:x', '1:0:10')).toBe(false); // the same message again
    expect(t.accept('a:x', '1:0:9')).toBe(false); // an older one (a replay)
    expect(t.accept('a:x', '1:0:11')).toBe(true);
    expect(t.accept('a:y', '1:0:5')).toBe(true); // channels are independent
    expect(t.accept('a:x', '2:0:1')).toBe(true); // a new epoch starts over
    expect(t.accept('a:x', '2:3:0')).toBe(true); // so does another partition
    expect(t.accept('a:x', 'not-a-position')).toBe(true); // unreadable: delivered, not recorded
    expect(t.snapshot()).toEqual({ 'a:x': '2:3:0', 'a:y': '1:0:5' });
  });

  it('takes offset -1 (before the first record) as older than every message of its partition', () => {
    expect(compareOffsets('-1', '0')).toBe(-1);
    expect(compareOffsets('9007199254740993', '-1')).toBe(1);
    expect(compareOffsets('-1', '-1')).toBe(0);
    const t = new PositionTracker({ 'a:x': '1:9:-1' });
    expect(t.snapshot()).toEqual({ 'a:x': '1:9:-1' });
    expect(t.accept('a:x', '1:9:-1')).toBe(false);
    expect(t.accept('a:x', '1:9:0')).toBe(true);
    expect(cursorFromPositions(['a:y'], new PositionTracker({ 'a:y': '1:3:-1' }))).toBe('1:3:-1');
  });

  it('loads saved positions, skipping garbage', () => {
    const t = new PositionTracker({ 'a:x': '1:0:5', 'a:y': 'garbage' });
    expect(t.snapshot()).toEqual({ 'a:x': '1:0:5' });
    expect(t.accept('a:x', '1:0:5')).toBe(false);
  });

  it("builds SSE cursors in the gateway's format", () => {
    const t = new PositionTracker({ 'a:x': '1:0:5', 'a:y': '1:2:7' });
    expect(cursorFromPositions(['a:x'], t)).toBe('1:0:5');
    expect(cursorFromPositions(['a:z'], t)).toBeNull();
    const multi = cursorFromPositions(['a:x', 'a:y', 'b:*'], t)!;
    expect(multi.startsWith('m.')).toBe(true);
    expect(JSON.parse(Buffer.from(multi.slice(2), 'base64url').toString())).toEqual({ 'a:x': '1:0:5', 'a:y': '1:2:7' });
  });
});
