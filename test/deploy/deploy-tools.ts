/**
 * What the deploy tests share: the repository root, YAML parsing, and the deploy tools (helm,
 * promtool, k6) where they are installed (scripts/install-tools.sh puts helm and k6 in
 * ~/.cache/fanout/bin; CI runs it before the tests).
 *
 * YAML is parsed by Python's PyYAML (Debian's python3-yaml, in every machine image here and
 * installed by scripts/install-tools.sh where missing): the project has no YAML parser among its
 * npm dependencies.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export type Doc = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const YAML_TO_JSON = 'import sys, json, yaml\njson.dump([d for d in yaml.safe_load_all(sys.stdin) if d is not None], sys.stdout)';

/** Every document of a YAML stream, as plain objects (anchors and merge keys resolved). */
export function parseYamlAll(text: string): Doc[] {
  const r = spawnSync('python3', ['-c', YAML_TO_JSON], { input: text, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.error || r.status !== 0) {
    throw new Error(`parsing YAML with python3 + PyYAML failed (apt-get install python3-yaml): ${r.error?.message ?? r.stderr}`);
  }
  return JSON.parse(r.stdout) as Doc[];
}

export function parseYaml(text: string): Doc {
  const docs = parseYamlAll(text);
  if (docs.length !== 1) throw new Error(`expected one YAML document, got ${docs.length}`);
  return docs[0]!;
}

/** A tool on PATH or in the project's tool cache, or null. */
export function findTool(name: string): string | null {
  const cached = join(process.env.FANOUT_TOOLS_BIN ?? join(homedir(), '.cache', 'fanout', 'bin'), name);
  if (existsSync(cached)) return cached;
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() ? r.stdout.trim() : null;
}

/** Runs a tool and returns stdout, or throws with its stderr. */
export function run(tool: string, args: string[], cwd = ROOT): string {
  try {
    return execFileSync(tool, args, { cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${tool} ${args.join(' ')} failed: ${e.stderr || e.stdout || e.message}`);
  }
}

/** Like run(), but expects failure and returns its stderr. */
export function runFailing(tool: string, args: string[], cwd = ROOT): string {
  const r = spawnSync(tool, args, { cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status === 0) throw new Error(`${tool} ${args.join(' ')} succeeded; expected it to fail`);
  return `${r.stderr}${r.stdout}`;
}

/** The services the images and the chart cover, and their entry points. */
export const SERVICES = ['publisher', 'gateway', 'router', 'dispatcher', 'market-data'] as const;
export const entryOf = (service: string) => join(ROOT, 'services', service, 'src', 'main.ts');
