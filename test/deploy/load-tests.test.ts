/**
 * The k6 scenarios in load-tests/: each is a script k6 can load (k6 inspect, where k6 is installed),
 * takes its settings from __ENV, has thresholds (so a run fails on a breach), and is described in
 * load-tests/README.md and run by the smoke script. The smoke run itself is `npm run load:smoke`
 * (a CI step), not a test here: it needs the whole cluster and ~2 minutes.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, findTool, run } from './deploy-tools.js';

const DIR = join(ROOT, 'load-tests');
const scenarios = readdirSync(DIR).filter((f) => f.endsWith('.js'));
const readme = readFileSync(join(DIR, 'README.md'), 'utf8');
const smoke = readFileSync(join(ROOT, 'scripts/load-smoke.sh'), 'utf8');
const k6 = findTool('k6');

describe('k6 load tests', () => {
  it('has the scenarios the deploy issue names', () => {
    expect(scenarios.sort()).toEqual([
      'long-poll.js',
      'publish-throughput.js',
      'reconnect-storm.js',
      'router-lookup.js',
      'sse-readers.js',
      'ws-fanout.js',
    ]);
  });

  it.each(scenarios)('%s is configured by __ENV, has thresholds, a README section and a smoke run', (file) => {
    const text = readFileSync(join(DIR, file), 'utf8');
    expect(text).toMatch(/\bnum\('|\bstr\('|\blist\('/);
    expect(text).toMatch(/thresholds:\s*\{/);
    const name = file.replace(/\.js$/, '');
    expect(readme).toContain(`load-tests/${file}`);
    expect(smoke).toMatch(new RegExp(`\\[${name}\\]=`));
  });

  it.skipIf(!k6).each(scenarios)('%s loads in k6 (k6 inspect)', (file) => {
    const out = JSON.parse(run(k6!, ['inspect', '--execution-requirements', join(DIR, file)], ROOT)) as {
      thresholds?: Record<string, string[]>;
      scenarios?: Record<string, unknown>;
    };
    expect(Object.keys(out.thresholds ?? {}).length).toBeGreaterThan(0);
    expect(Object.keys(out.scenarios ?? {}).length).toBeGreaterThan(0);
  });
});
