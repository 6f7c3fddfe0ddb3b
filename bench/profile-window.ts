/**
 * Where a gateway's CPU went in a window of a benchmark (`bench:ingest`'s consumption window,
 * `bench:connections`' idle and broadcast windows, logged in CLOCK_MONOTONIC microseconds) out of the gateway's V8 CPU profile
 * (BENCH_GATEWAY_NODE_ARGS="--cpu-prof --cpu-prof-dir=<dir>") and prints self and inclusive time per
 * function, with each function's source line.
 *
 *   npx tsx bench/profile-window.ts <file.cpuprofile> <fromUs> <toUs> [top=25]
 *
 * tsx runs TypeScript minified to one line, so a profile names every .ts function at line 1; the
 * line is recovered here from tsx's cache (<tmpdir>/tsx-<uid>/*: the code it ran and its source
 * map): for each .ts file, the cached build whose code has the profile's function names at the
 * profile's columns, then the source map from that column to the original line. A file whose build
 * is not in the cache keeps `:?`.
 *
 * Samples cover the main thread only (JavaScript, and native code called from it); `(garbage
 * collector)` is the main thread's share of GC.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const [file, fromArg, toArg, topArg] = process.argv.slice(2);
if (!file || !fromArg || !toArg) {
  console.error('usage: tsx bench/profile-window.ts <file.cpuprofile> <fromUs> <toUs> [top]');
  process.exit(2);
}
const from = Number(fromArg);
const to = Number(toArg);
const top = Number(topArg ?? 25);
const prof = JSON.parse(readFileSync(file, 'utf8')) as Profile;

// ---------------------------------------------------------------- source lines of tsx-built files

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Source map segments of generated line 0: [generated column, original line], in column order. */
function firstLineSegments(mappings: string): [number, number][] {
  const out: [number, number][] = [];
  const line0 = mappings.split(';')[0] ?? '';
  let col = 0;
  let srcLine = 0;
  for (const seg of line0.split(',')) {
    if (!seg) continue;
    const vals: number[] = [];
    let shift = 0;
    let value = 0;
    for (const ch of seg) {
      const d = B64.indexOf(ch);
      value += (d & 31) << shift;
      if (d & 32) shift += 5;
      else {
        vals.push(value & 1 ? -(value >>> 1) : value >>> 1);
        value = 0;
        shift = 0;
      }
    }
    col += vals[0] ?? 0;
    if (vals.length >= 4) {
      srcLine += vals[2]!;
      out.push([col, srcLine]);
    }
  }
  return out;
}

interface Build {
  code: string;
  segments: [number, number][];
}

/** tsx's cached builds, by the path suffix of their source (`services/...`, `packages/...`). */
function tsxBuilds(): Map<string, Build[]> {
  const builds = new Map<string, Build[]>();
  const dir = join(tmpdir(), `tsx-${userInfo().uid}`);
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    return builds;
  }
  for (const n of names) {
    try {
      const j = JSON.parse(readFileSync(join(dir, n), 'utf8')) as { code?: string; map?: { sources?: string[]; mappings?: string } };
      const src = j.map?.sources?.[0];
      if (!j.code || !src || !j.map?.mappings) continue;
      const m = /(services|packages|bench)\/.*$/.exec(src);
      if (!m) continue;
      const list = builds.get(m[0]) ?? [];
      list.push({ code: j.code, segments: firstLineSegments(j.map.mappings) });
      builds.set(m[0], list);
    } catch {
      /* not a build */
    }
  }
  return builds;
}

/** Whether a build's code has a function named `name` starting at `col` (V8's column of a function: its name or its parameter list). */
function fits(code: string, name: string, col: number): boolean {
  if (!name) return true;
  const around = code.slice(Math.max(0, col - name.length - 12), col + name.length + 2);
  return around.includes(name);
}

const builds = tsxBuilds();
const chosen = new Map<string, Build | null>();
function sourceLine(f: CallFrame): string {
  if (!f.url) return '';
  const path = f.url.replace(/^file:\/\//, '');
  const short = path.replace(/^.*\/(node_modules|services|packages|bench)\//, '$1/');
  if (!/\.ts$/.test(path) || short.startsWith('node_modules/')) return `${short}:${f.lineNumber + 1}`;
  if (!chosen.has(short)) {
    // The build whose code has this file's profiled functions at their columns.
    const frames = prof.nodes.filter((n) => n.callFrame.url === f.url).map((n) => n.callFrame);
    const candidates = builds.get(short) ?? [];
    chosen.set(short, candidates.find((b) => frames.every((fr) => fits(b.code, fr.functionName, fr.columnNumber))) ?? null);
  }
  const b = chosen.get(short);
  if (!b || f.lineNumber !== 0) return `${short}:${b ? f.lineNumber + 1 : '?'}`;
  let line = -1;
  for (const [col, l] of b.segments) {
    if (col > f.columnNumber) break;
    line = l;
  }
  return `${short}:${line >= 0 ? line + 1 : '?'}`;
}

// ---------------------------------------------------------------- self and inclusive time

const byId = new Map<number, ProfileNode>();
const parent = new Map<number, number>();
for (const n of prof.nodes) {
  byId.set(n.id, n);
  for (const c of n.children ?? []) parent.set(c, n.id);
}
const keys = new Map<number, string>();
const key = (n: ProfileNode) => {
  let k = keys.get(n.id);
  if (k === undefined) {
    const where = sourceLine(n.callFrame);
    k = `${n.callFrame.functionName || '(anonymous)'}${where ? ' ' + where : ''}`;
    keys.set(n.id, k);
  }
  return k;
};

const self = new Map<string, number>();
const incl = new Map<string, number>();
let t = prof.startTime;
let total = 0;
let idle = 0;
for (let i = 0; i < prof.samples.length; i++) {
  const dt = prof.timeDeltas[i] ?? 0;
  t += dt;
  if (t < from || t > to) continue;
  const span = prof.timeDeltas[i + 1] ?? dt;
  const node = byId.get(prof.samples[i]!)!;
  if (node.callFrame.functionName === '(idle)') {
    idle += span;
    continue;
  }
  total += span;
  const k = key(node);
  self.set(k, (self.get(k) ?? 0) + span);
  const seen = new Set<string>();
  for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
    const kk = key(byId.get(id)!);
    if (seen.has(kk)) continue;
    seen.add(kk);
    incl.set(kk, (incl.get(kk) ?? 0) + span);
  }
}
const ms = (us: number) => (us / 1000).toFixed(1).padStart(9);
const pct = (us: number) => ((100 * us) / Math.max(1, total)).toFixed(1).padStart(5);
const lines: string[] = [];
lines.push(
  `window ${((to - from) / 1e6).toFixed(1)} s (profile ${((prof.endTime - prof.startTime) / 1e6).toFixed(1)} s): main thread busy ${(total / 1000).toFixed(1)} ms, idle ${(idle / 1000).toFixed(1)} ms; % of busy samples`,
);
lines.push('', 'self time        ms     %');
for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`${ms(v)} ${pct(v)}  ${k}`);
lines.push('', 'inclusive time   ms     %');
for (const [k, v] of [...incl]
  .sort((a, b) => b[1] - a[1])
  .filter(([k]) => k !== '(root)')
  .slice(0, top))
  lines.push(`${ms(v)} ${pct(v)}  ${k}`);
process.stdout.write(lines.join('\n') + '\n');
