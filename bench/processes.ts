/**
 * Child processes for benchmarks: services started with `node --import tsx`, their output relayed
 * to stderr with a name (stdout is the benchmark's table and JSON line), readiness by polling a
 * URL, graceful stops with a SIGKILL fallback, and every child killed when the benchmark exits.
 */
import { spawn, fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 23)}] ${msg}\n`);
}

function track(name: string, child: ChildProcess): ChildProcess {
  children.add(child);
  child.on('exit', () => children.delete(child));
  const relay = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) if (line.trim()) process.stderr.write(`[${name}] ${line}\n`);
  };
  child.stdout?.on('data', relay);
  child.stderr?.on('data', relay);
  return child;
}

/** Starts a TypeScript entry point (a service's main.ts) as a child process. */
export function spawnService(name: string, script: string, env: Record<string, string>, args: string[] = [], nodeArgs: string[] = []): ChildProcess {
  return track(name, spawn(process.execPath, [...nodeArgs, '--import', 'tsx', script, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] }));
}

/** Starts a TypeScript worker with an IPC channel (BENCH_WORKER_NODE_ARGS: extra node flags, e.g. --cpu-prof). */
export function forkWorker(name: string, script: string): ChildProcess {
  const extra = (process.env.BENCH_WORKER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  return track(name, fork(script, [], { cwd: ROOT, execArgv: [...extra, '--import', 'tsx'], stdio: ['ignore', 'pipe', 'pipe', 'ipc'] }));
}

/** Waits until `url` answers 200 (the child must stay alive meanwhile). */
export async function waitReady(child: ChildProcess, url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${url}: the process exited (${child.exitCode ?? child.signalCode}) before it was ready`);
    const status = await fetch(url, { signal: AbortSignal.timeout(2000) }).then((r) => r.status, () => 0);
    if (status === 200) return;
    await sleep(50);
  }
  throw new Error(`${url} not ready within ${timeoutMs} ms`);
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the child is gone. */
export async function stopChild(child: ChildProcess, graceMs = 8000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(t);
}

export async function stopAll(graceMs = 3000): Promise<void> {
  await Promise.all([...children].map((c) => stopChild(c, graceMs)));
}

/** Kills every child now (overall time bound). */
export function killAll(): void {
  for (const c of children) c.kill('SIGKILL');
}

/** Resident memory of a process, in bytes (/proc/<pid>/status VmRSS). */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** Sums a Prometheus counter's samples (optionally only those whose labels contain `match`). */
export function metricSum(text: string, name: string, match?: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name + '{') && !line.startsWith(name + ' ')) continue;
    if (match && !line.includes(match)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** The machine's TCP listen-queue overflows so far (/proc/net/netstat TcpExt ListenOverflows). */
export function listenOverflows(): number {
  const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n');
  for (let i = 0; i + 1 < lines.length; i += 2) {
    if (!lines[i]!.startsWith('TcpExt:')) continue;
    const names = lines[i]!.split(/\s+/);
    const values = lines[i + 1]!.split(/\s+/);
    const k = names.indexOf('ListenOverflows');
    return k >= 0 ? Number(values[k]) : 0;
  }
  return 0;
}

/** CPU seconds (user + system) a process has used so far (/proc/<pid>/stat; 0 when it is gone). */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of the line, in clock ticks (100 a second on Linux).
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
}

/** Busy and total jiffies of the whole machine (/proc/stat), for cores busy over a phase. */
export function machineJiffies(): { busy: number; total: number } {
  const v = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  return { busy: total - v[3]! - (v[4] ?? 0), total };
}
