/** The client repeats a few protocol constants (so its browser bundle needs no Node modules): they must match. */
import { describe, expect, it } from 'vitest';
import {
  CLOSE,
  MAX_CHANNELS_PER_FRAME as P_MAX_CH,
  MAX_CREDIT_GRANT as P_MAX_CREDIT,
  isValidChannel,
  parseNamespacePattern,
  parsePosition as pParse,
  shouldReconnect,
} from '@fanout/protocol';
import { CLOSE_CODES, isSubscribable, isTerminalCloseCode, MAX_CHANNELS_PER_FRAME, MAX_CREDIT_GRANT, parsePosition } from '@fanout/client';
import { CLOSE_CODE_TABLE, closeCodeName } from '../src/protocol.js';

describe('protocol parity', () => {
  it('close codes and their reconnect rule', () => {
    for (const [k, v] of Object.entries(CLOSE)) expect(CLOSE_CODES[k as keyof typeof CLOSE_CODES], k).toBe(v.code);
    for (const code of [1000, 1001, 1006, 1011, 4000, 4001, 4002, 4499, 4500, 4501, 4999])
      expect(isTerminalCloseCode(code), String(code)).toBe(!shouldReconnect(code));
  });

  it("the close-code table is the registry's: same codes, labels and reconnect advice", () => {
    const registry = Object.fromEntries(
      Object.entries(CLOSE).map(([name, c]) => [name, { code: c.code, label: c.label, reconnect: c.reconnect }]),
    );
    expect(CLOSE_CODE_TABLE).toEqual(registry);
    expect(CLOSE_CODES).toEqual(Object.fromEntries(Object.entries(CLOSE).map(([name, c]) => [name, c.code])));
  });

  it('a terminal close code is reported by its registry label', () => {
    for (const c of Object.values(CLOSE)) if (!c.reconnect) expect(closeCodeName(c.code)).toBe(c.label);
    expect(closeCodeName(4999)).toBe('closed_by_server');
  });

  it('limits', () => {
    expect(MAX_CHANNELS_PER_FRAME).toBe(P_MAX_CH);
    expect(MAX_CREDIT_GRANT).toBe(P_MAX_CREDIT);
  });

  it('channel grammar and positions', () => {
    const samples = [
      'prices:AAPL',
      'user:42',
      'news:*',
      'Prices:AAPL',
      'prices:',
      'a:' + 'x'.repeat(200),
      'a:' + 'x'.repeat(201),
      'p:A*',
      'x-y:a.b=c@d-e_f',
      'ns:a b',
      '',
      'a'.repeat(33) + ':x',
    ];
    for (const s of samples) expect(isSubscribable(s), s).toBe(isValidChannel(s) || parseNamespacePattern(s) !== null);
    for (const p of ['1:0:0', 'e_1-x:12:345', '1:1234567:0', '1:0:12345678901234567', 'a:b:c', '1:0'])
      expect(parsePosition(p) !== null, p).toBe(pParse(p) !== null);
  });

  it('offset -1 ("before the first record", docs/protocol.md) is a position to both, and no other negative is', () => {
    for (const p of ['1:9:-1', 'ep-2:0:-1', '1:0:-2', '1:0:-01', '1:0:--1', '1:0:-', '1:-1:0'])
      expect(parsePosition(p) !== null, p).toBe(pParse(p) !== null);
    expect(parsePosition('1:9:-1')).toEqual({ epoch: '1', partition: 9, offset: '-1' });
    expect(pParse('1:9:-1')).toEqual({ epoch: '1', partition: 9, offset: -1 });
  });
});
