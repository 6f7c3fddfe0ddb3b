// Compares two runs of the same test suite from vitest's JSON reports (CI: Node 20 on the host and
// Node 24 in the Debian 13 root): every test must have the same outcome in both (passed in both, or
// skipped in both). Prints each difference and exits 1 when there is one.
// Usage: node scripts/ci-compare-runs.mjs <label a> <a.json>[,<a2.json>...] <label b> <b.json>[,<b2.json>...]
import { existsSync, readFileSync } from 'node:fs';
import { relative } from 'node:path';

const [labelA, filesA, labelB, filesB] = process.argv.slice(2);
if (!filesB) {
  console.error('usage: node scripts/ci-compare-runs.mjs <label a> <a.json>[,...] <label b> <b.json>[,...]');
  process.exit(2);
}

/** test file (relative to the repository) + full name -> status (passed, failed, skipped, todo). */
function outcomes(files) {
  const out = new Map();
  for (const file of files.split(',')) {
    if (!existsSync(file)) {
      console.error(`[ci] no test report at ${file}`);
      process.exit(1);
    }
    const report = JSON.parse(readFileSync(file, 'utf8'));
    for (const suite of report.testResults) {
      const path = relative(process.cwd(), suite.name);
      if (suite.assertionResults.length === 0) out.set(`${path} (file)`, suite.status);
      for (const t of suite.assertionResults) {
        const status = t.status === 'pending' ? 'skipped' : t.status;
        out.set(`${path} > ${t.fullName}`, status);
      }
    }
  }
  return out;
}

const a = outcomes(filesA);
const b = outcomes(filesB);
const diffs = [];
for (const key of new Set([...a.keys(), ...b.keys()])) {
  const [sa, sb] = [a.get(key) ?? 'absent', b.get(key) ?? 'absent'];
  if (sa !== sb) diffs.push(`  ${key}: ${labelA} ${sa}, ${labelB} ${sb}`);
}
const count = (m, s) => [...m.values()].filter((v) => v === s).length;
console.log(
  `[ci] ${labelA}: ${count(a, 'passed')} passed, ${count(a, 'skipped')} skipped; ${labelB}: ${count(b, 'passed')} passed, ${count(b, 'skipped')} skipped`,
);
if (diffs.length > 0) {
  console.error(`[ci] ${diffs.length} test(s) behave differently on ${labelA} and ${labelB}:\n${diffs.sort().join('\n')}`);
  process.exit(1);
}
console.log(`[ci] ${a.size} tests: the same outcome on ${labelA} and ${labelB}`);
