/**
 * Cuts a window out of a V8 CPU profile (a gateway started with `--cpu-prof`, see
 * bench/connections.ts) and prints where the samples in it went: self time and inclusive time per
 * function, the top entries of each. The window is in CLOCK_MONOTONIC microseconds, the clock of
 * V8's profiles, as bench/connections.ts logs its idle and broadcast windows.
 *
 *   npx tsx bench/connections-profile.ts <file.cpuprofile> <fromUs> <toUs> [top=25]
 *
 * Samples only cover the main thread's JavaScript and what it calls (uWS, syscalls made from it:
 * `(program)` is native code outside JavaScript, `(idle)` the event loop waiting); the CPU of other
 * threads (GC helpers, the libuv pool) is not in it.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
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
  console.error('usage: tsx bench/connections-profile.ts <file.cpuprofile> <fromUs> <toUs> [top]');
  process.exit(2);
}
const from = Number(fromArg);
const to = Number(toArg);
const top = Number(topArg ?? 25);
const prof = JSON.parse(readFileSync(file, 'utf8')) as Profile;

const byId = new Map<number, ProfileNode>();
const parent = new Map<number, number>();
for (const n of prof.nodes) {
  byId.set(n.id, n);
  for (const c of n.children ?? []) parent.set(c, n.id);
}
const key = (n: ProfileNode) => {
  const f = n.callFrame;
  const where = f.url ? ` ${f.url.replace(/^.*\/(node_modules|services|packages)\//, '$1/')}:${f.lineNumber + 1}` : '';
  return `${f.functionName || '(anonymous)'}${where}`;
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
  // A sample stands for the time until the next one.
  const span = prof.timeDeltas[i + 1] ?? dt;
  const node = byId.get(prof.samples[i]!)!;
  const k = key(node);
  if (node.callFrame.functionName === '(idle)') {
    idle += span;
    continue;
  }
  total += span;
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
console.log(`window ${((to - from) / 1e6).toFixed(1)} s (profile ${((prof.endTime - prof.startTime) / 1e6).toFixed(1)} s): main thread busy ${(total / 1000).toFixed(1)} ms (${((100 * total) / Math.max(1, to - from)).toFixed(2)}% of the window), idle ${(idle / 1000).toFixed(1)} ms`);
console.log('\nself time        ms     %');
for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${ms(v)} ${pct(v)}  ${k}`);
console.log('\ninclusive time   ms     %');
for (const [k, v] of [...incl].sort((a, b) => b[1] - a[1]).filter(([k]) => k !== '(root)').slice(0, top)) console.log(`${ms(v)} ${pct(v)}  ${k}`);
