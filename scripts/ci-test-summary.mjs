// Prints the closing line of a CI run from vitest's JSON reports: "tests: N passed, N failed, N skipped".
// Exits 1 when a report is missing, a test failed, or no test ran (a suite that ran nothing is not green).
// Usage: node scripts/ci-test-summary.mjs report.json [report.json ...]
import { existsSync, readFileSync } from 'node:fs';

const totals = { passed: 0, failed: 0, skipped: 0 };
let ok = true;
for (const file of process.argv.slice(2)) {
  if (!existsSync(file)) {
    console.error(`[ci] no test report at ${file}: the test run did not finish`);
    ok = false;
    continue;
  }
  const r = JSON.parse(readFileSync(file, 'utf8'));
  totals.passed += r.numPassedTests;
  totals.failed += r.numFailedTests + (r.numFailedTestSuites ?? 0);
  totals.skipped += r.numPendingTests + r.numTodoTests;
  console.log(`[ci] ${file}: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
}
if (totals.passed === 0 || totals.failed > 0) ok = false;
console.log(`tests: ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
process.exit(ok ? 0 : 1);
