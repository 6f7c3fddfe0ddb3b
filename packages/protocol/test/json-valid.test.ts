/**
 * isValidJson accepts exactly what JSON.parse accepts: property-based, against JSON.parse itself,
 * on valid JSON, on JSON with edits (a character inserted, deleted or replaced), and on strings
 * over JSON's own alphabet.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isValidJson } from '../src/json-valid.js';

const parses = (s: string) => {
  try {
    JSON.parse(s);
    return true;
  } catch {
    return false;
  }
};

const ALPHABET = [
  ...' \t\n\r{}[]:,"\\/-+.0123456789eEtrufalsnbx\u0000\u001f\u00e9\ud83d\ude00',
  'true',
  'false',
  'null',
  '\\u00',
  '\\uZZ',
  '1e',
  '-0',
  '01',
  '.5',
];
const jsonish = fc.array(fc.constantFrom(...ALPHABET), { maxLength: 40 }).map((a) => a.join(''));
const edited = fc
  .tuple(fc.json({ maxDepth: 4 }), fc.nat(), fc.constantFrom('insert', 'delete', 'replace'), fc.constantFrom(...ALPHABET))
  .map(([s, at, op, ch]) => {
    const i = s.length === 0 ? 0 : at % s.length;
    return op === 'insert'
      ? s.slice(0, i) + ch + s.slice(i)
      : op === 'delete'
        ? s.slice(0, i) + s.slice(i + 1)
        : s.slice(0, i) + ch + s.slice(i + 1);
  });

describe('isValidJson', () => {
  it('accepts every JSON text (fast-check json, with whitespace around)', () => {
    fc.assert(
      fc.property(fc.json({ maxDepth: 6 }), fc.constantFrom('', ' ', '\n\t', '\r\n '), (s, ws) => isValidJson(ws + s + ws)),
      { numRuns: 3000, seed: 1 },
    );
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4, stringUnit: 'binary' }), (v) => isValidJson(JSON.stringify(v, null, 1))),
      { numRuns: 2000, seed: 2 },
    );
  });

  it('agrees with JSON.parse on edited JSON and on random JSON-alphabet strings', () => {
    fc.assert(
      fc.property(edited, (s) => isValidJson(s) === parses(s)),
      { numRuns: 20000, seed: 3 },
    );
    fc.assert(
      fc.property(jsonish, (s) => isValidJson(s) === parses(s)),
      { numRuns: 20000, seed: 4 },
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 30 }), (s) => isValidJson(s) === parses(s)),
      { numRuns: 5000, seed: 5 },
    );
  });

  it.each([
    ['', false],
    [' ', false],
    ['{}', true],
    ['[]', true],
    ['[1,]', false],
    ['{"a":1,}', false],
    ['{,}', false],
    ['[,1]', false],
    ['01', false],
    ['-', false],
    ['1.', false],
    ['.1', false],
    ['1e5', true],
    ['1E+5', true],
    ['-0.0e-0', true],
    ['"\\u12G4"', false],
    ['"a\nb"', false],
    ['"\\/"', true],
    ['{"a" 1}', false],
    ['{"a":}', false],
    ['[1 2]', false],
    ['1 2', false],
    ['nul', false],
    ['truex', false],
    ['"\ud800"', true],
    ['{"a":[{"b":[]}]}', true],
    ['[[[]]', false],
    [']', false],
    ['}', false],
    ['{]', false],
    ['[}', false],
  ])('%j -> %s', (s, want) => {
    expect(isValidJson(s)).toBe(want);
    expect(parses(s)).toBe(want);
  });

  it('handles nesting far deeper than the call stack, and honours maxDepth', () => {
    const deep = '['.repeat(200_000) + ']'.repeat(200_000);
    expect(isValidJson(deep)).toBe(true);
    expect(isValidJson(deep, 1000)).toBe(false);
    expect(isValidJson('['.repeat(200_000))).toBe(false);
  });
});
