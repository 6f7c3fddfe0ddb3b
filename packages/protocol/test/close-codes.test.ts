import { describe, expect, it } from 'vitest';
import { CLOSE, CLOSE_PEER, CLOSE_RFC, closeLabel, shouldReconnect } from '@fanout/protocol';

describe('close codes', () => {
  it('advise a reconnect exactly in the 4000-4499 range of the codes the gateway chooses', () => {
    for (const [name, c] of Object.entries(CLOSE)) {
      expect(c.reconnect, name).toBe(c.code >= 4000 && c.code < 4500);
      expect(shouldReconnect(c.code), name).toBe(c.reconnect);
    }
  });

  it('gives every code and every label once', () => {
    const all = [...Object.values(CLOSE), ...Object.values(CLOSE_PEER), ...Object.values(CLOSE_RFC)];
    expect(new Set(all.map((c) => c.code)).size).toBe(all.length);
    const labelled = [...Object.values(CLOSE), ...Object.values(CLOSE_PEER)];
    expect(new Set(labelled.map((c) => c.label)).size).toBe(labelled.length);
    for (const c of labelled) expect(c.label).toMatch(/^[a-z][a-z_]*$/);
  });

  it('labels the codes of the metrics, and every other code as other', () => {
    const expected: Record<number, string> = {
      1000: 'normal',
      1001: 'going_away',
      1006: 'abnormal',
      4000: 'service_restart',
      4001: 'slow_consumer',
      4002: 'rebalance',
      4003: 'try_again',
      4500: 'protocol_violation',
      4501: 'unauthorized',
    };
    for (const [code, label] of Object.entries(expected)) expect(closeLabel(Number(code)), code).toBe(label);
    for (const code of [0, 1002, 1003, 1005, 1007, 1009, 1011, 3000, 4004, 4499, 4502, 4999, 5000])
      expect(closeLabel(code), String(code)).toBe('other');
  });
});
