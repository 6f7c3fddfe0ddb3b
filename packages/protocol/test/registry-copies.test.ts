/**
 * The registries (errors.ts, close-codes.ts) are repeated as tables in the docs, for readers: every
 * such copy must say what the registry says. (The SDK's copy of the close codes is checked by
 * packages/client/test/protocol-parity.test.ts; the OpenAPI documents' error codes by
 * test/openapi-contract.test.ts.)
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CLOSE, CLOSE_RFC, ERRORS } from '@fanout/protocol';

const DOCS = fileURLToPath(new URL('../../../docs/', import.meta.url));
const registry = ERRORS as Record<string, { status: number; retriable: boolean }>;

/** The cells of every table row of a Markdown text, with the line it is on. */
function rows(text: string): { line: number; cells: string[] }[] {
  return text
    .split('\n')
    .map((l, i) => ({ line: i + 1, l: l.trim() }))
    .filter(({ l }) => l.startsWith('|') && !/^\|[\s|:-]+\|$/.test(l))
    .map(({ line, l }) => ({
      line,
      cells: l
        .slice(1, -1)
        .split('|')
        .map((c) => c.trim()),
    }));
}

/** The section of a Markdown text under `heading`, up to the next heading of the same level. */
function section(text: string, heading: string): string {
  const start = text.indexOf(`\n${heading}\n`);
  expect(start, heading).toBeGreaterThan(0);
  const level = heading.split(' ')[0]!;
  const end = text.indexOf(`\n${level} `, start + heading.length + 2);
  return text.slice(start, end < 0 ? undefined : end);
}

describe('copies of the error-code registry', () => {
  it("docs/protocol.md's error table lists every code once, with the registry's status and retriable", () => {
    const table = rows(section(readFileSync(DOCS + 'protocol.md', 'utf8'), '## Error codes')).filter((r) =>
      /^`[a-z_]+`$/.test(r.cells[0]!),
    );
    const listed = table.map((r) => r.cells[0]!.slice(1, -1));
    expect(listed.slice().sort()).toEqual(Object.keys(ERRORS).sort());
    for (const { cells } of table) {
      const code = cells[0]!.slice(1, -1);
      expect(Number(cells[1]), code).toBe(registry[code]!.status);
      expect(cells[2], code).toBe(registry[code]!.retriable ? 'yes' : 'no');
    }
  });

  it('every docs table row that names a registry code and an HTTP status gives that code its status', () => {
    let checked = 0;
    for (const file of readdirSync(DOCS).filter((f) => f.endsWith('.md'))) {
      for (const { line, cells } of rows(readFileSync(DOCS + file, 'utf8'))) {
        const codes = cells.map((c) => /^`([a-z_]+)`(?: \(retriable\))?$/.exec(c)?.[1]).filter((c) => c !== undefined && c in registry);
        const statuses = cells.filter((c) => /^[45]\d\d$/.test(c)).map(Number);
        if (codes.length !== 1 || statuses.length !== 1) continue;
        expect(statuses[0], `docs/${file}:${line} ${codes[0]}`).toBe(registry[codes[0]!]!.status);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(Object.keys(ERRORS).length);
  });
});

describe('copies of the close-code registry', () => {
  it("docs/protocol.md's close-code tables give each code the registry's reason", () => {
    const table = rows(section(readFileSync(DOCS + 'protocol.md', 'utf8'), '## Close codes')).filter((r) => /^\d{4}$/.test(r.cells[0]!));
    const documented = new Map(table.map((r) => [Number(r.cells[0]), r.cells[1]!.replace(/^`|`$/g, '')]));
    for (const c of [...Object.values(CLOSE), ...Object.values(CLOSE_RFC)]) {
      expect(documented.has(c.code), String(c.code)).toBe(true);
      // The gateway adds the limit to 1009's reason (`message too big: over <n> bytes`).
      expect(documented.get(c.code)!.startsWith(c.reason), String(c.code)).toBe(true);
    }
  });
});
