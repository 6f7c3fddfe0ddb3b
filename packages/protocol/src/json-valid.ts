/**
 * Whether a text is one JSON value (RFC 8259), exactly as `JSON.parse` would accept it, without
 * building the value: the gateway checks every Kafka record's value once before embedding it in
 * frames, and parsing allocated the whole value only to throw it away (a fifth of the gateway's
 * own work per record). `test/json-valid.test.ts` checks it against `JSON.parse` with fast-check.
 *
 * Iterative (an explicit stack of open containers), so that no nesting depth can overflow the call
 * stack; `maxDepth` bounds the stack (deeper text is reported invalid).
 */
const WS = new Uint8Array(128);
WS[0x20] = WS[0x09] = WS[0x0a] = WS[0x0d] = 1;

const enum Expect {
  Value,
  /** After a value inside an object or array: `,` or the closing bracket. */
  After,
  /** After `{` or `,` in an object: a key string (or `}` right after `{`). */
  Key,
  /** After a key: `:`. */
  Colon,
}

export function isValidJson(s: string, maxDepth = Infinity): boolean {
  const n = s.length;
  // Open containers: 1 = object, 2 = array.
  const stack: number[] = [];
  let i = 0;
  let expect = Expect.Value;
  let emptyOk = false; // right after `[` or `{`, the closing bracket may come at once
  for (;;) {
    while (i < n) {
      const c = s.charCodeAt(i);
      if (c < 128 && WS[c] === 1) i++;
      else break;
    }
    if (i >= n) return false;
    const c = s.charCodeAt(i);
    if (expect === Expect.Value) {
      if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
        if (stack.length >= maxDepth) return false;
        stack.push(c === 0x7b ? 1 : 2);
        i++;
        expect = c === 0x7b ? Expect.Key : Expect.Value;
        emptyOk = true;
        continue;
      }
      if (emptyOk && c === 0x5d /* ] */ && stack[stack.length - 1] === 2) {
        stack.pop();
        i++;
      } else {
        const end = scalarEnd(s, i, c);
        if (end < 0) return false;
        i = end;
      }
    } else if (expect === Expect.Key) {
      if (c === 0x7d /* } */ && emptyOk) {
        stack.pop();
        i++;
      } else {
        if (c !== 0x22) return false;
        const end = stringEnd(s, i);
        if (end < 0) return false;
        i = end;
        expect = Expect.Colon;
        emptyOk = false;
        continue;
      }
    } else if (expect === Expect.Colon) {
      if (c !== 0x3a) return false;
      i++;
      expect = Expect.Value;
      continue;
    } else {
      // Expect.After
      const top = stack[stack.length - 1];
      if (c === 0x2c /* , */) {
        i++;
        expect = top === 1 ? Expect.Key : Expect.Value;
        emptyOk = false;
        continue;
      }
      if ((top === 1 && c === 0x7d) || (top === 2 && c === 0x5d)) {
        stack.pop();
        i++;
      } else {
        return false;
      }
    }
    // A value is complete (a scalar, or a container just closed).
    emptyOk = false;
    if (stack.length === 0) {
      while (i < n) {
        const d = s.charCodeAt(i);
        if (d < 128 && WS[d] === 1) i++;
        else return false;
      }
      return true;
    }
    expect = Expect.After;
  }
}

/** The index after the scalar (string, number, literal) at `i`, or -1. */
function scalarEnd(s: string, i: number, c: number): number {
  if (c === 0x22) return stringEnd(s, i);
  if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return numberEnd(s, i);
  if (c === 0x74) return s.startsWith('true', i) ? i + 4 : -1;
  if (c === 0x66) return s.startsWith('false', i) ? i + 5 : -1;
  if (c === 0x6e) return s.startsWith('null', i) ? i + 4 : -1;
  return -1;
}

/** `"..."` at `i`: the index after the closing quote, or -1. No control characters; escapes as RFC 8259. */
/** A run of string characters that need no look (not a quote, a backslash or a control character). */
const PLAIN = /[^"\\\u0000-\u001f]*/y;

function stringEnd(s: string, i: number): number {
  const n = s.length;
  i++;
  while (i < n) {
    PLAIN.lastIndex = i;
    PLAIN.test(s);
    i = PLAIN.lastIndex;
    if (i >= n) return -1;
    const c = s.charCodeAt(i);
    if (c === 0x22) return i + 1;
    if (c < 0x20) return -1;
    if (c === 0x5c) {
      const e = s.charCodeAt(i + 1);
      if (e === 0x22 || e === 0x5c || e === 0x2f || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74) i += 2;
      else if (e === 0x75) {
        for (let k = 2; k < 6; k++) if (!isHex(s.charCodeAt(i + k))) return -1;
        i += 6;
      } else return -1;
    } else i++;
  }
  return -1;
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

/** `-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?` at `i`: the index after it, or -1. */
function numberEnd(s: string, i: number): number {
  const n = s.length;
  if (s.charCodeAt(i) === 0x2d) i++;
  if (i >= n) return -1;
  let c = s.charCodeAt(i);
  if (c === 0x30) i++;
  else if (c >= 0x31 && c <= 0x39) {
    i++;
    while (i < n && isDigit(s.charCodeAt(i))) i++;
  } else return -1;
  c = s.charCodeAt(i);
  if (c === 0x2e) {
    i++;
    if (!isDigit(s.charCodeAt(i))) return -1;
    while (i < n && isDigit(s.charCodeAt(i))) i++;
    c = s.charCodeAt(i);
  }
  if (c === 0x65 || c === 0x45) {
    i++;
    c = s.charCodeAt(i);
    if (c === 0x2b || c === 0x2d) i++;
    if (!isDigit(s.charCodeAt(i))) return -1;
    while (i < n && isDigit(s.charCodeAt(i))) i++;
  }
  return i;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}
