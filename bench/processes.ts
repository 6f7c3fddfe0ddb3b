/**
 * Child processes for benchmarks: services started with `node --import tsx`, their output relayed
 * to stderr with a name (stdout is the benchmark's table and JSON line), readiness by polling a
 * URL, graceful stops with a SIGKILL fallback, and every child killed when the benchmark exits.
 */
import { execFileSync, spawn, fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';
import { kafkajsSecurity } from '@fanout/kafka';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** CLOCK_MONOTONIC in µs: the clock of V8's CPU profiles, so a window logged with it can be cut out of a --cpu-prof (bench/profile-window.ts). */
export const monoUs = () => process.hrtime.bigint() / 1000n;

/** Client worker processes that report `{ op: 'progress', received }`: the total received so far, and an RPC each. */
export class WorkerPool<To, From extends { op: string }> {
  readonly workers: { rpc: WorkerRpc<To, From>; received: number }[] = [];

  constructor(count: number, script: string) {
    for (let k = 0; k < count; k++) {
      const w = { rpc: null as unknown as WorkerRpc<To, From>, received: 0 };
      w.rpc = new WorkerRpc<To, From>(`clients-${k}`, script, (m) => {
        if (m.op === 'progress') w.received = (m as unknown as { received: number }).received;
      });
      this.workers.push(w);
    }
  }

  get received(): number {
    return this.workers.reduce((n, w) => n + w.received, 0);
  }
}

/** Waits until `clients.received` reaches `target`; false after `stallMs` without progress or at `deadline`. */
export async function waitDeliveries(
  clients: { readonly received: number },
  target: number,
  deadline: number,
  stallMs: number,
): Promise<boolean> {
  let last = clients.received;
  let lastProgress = Date.now();
  for (;;) {
    if (clients.received >= target) return true;
    const now = Date.now();
    if (clients.received !== last) {
      last = clients.received;
      lastProgress = now;
    }
    if (now - lastProgress > stallMs || now > deadline) return false;
    await sleep(5);
  }
}

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
export function spawnService(
  name: string,
  script: string,
  env: Record<string, string>,
  args: string[] = [],
  nodeArgs: string[] = [],
): ChildProcess {
  return track(
    name,
    spawn(process.execPath, [...nodeArgs, '--import', 'tsx', script, ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
}

/** Starts a TypeScript worker with an IPC channel (BENCH_WORKER_NODE_ARGS: extra node flags, e.g. --cpu-prof). */
export function forkWorker(name: string, script: string): ChildProcess {
  const extra = (process.env.BENCH_WORKER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  return track(name, fork(script, [], { cwd: ROOT, execArgv: [...extra, '--import', 'tsx'], stdio: ['ignore', 'pipe', 'pipe', 'ipc'] }));
}

/**
 * A forked worker that answers requests in order over IPC: `{op: 'progress'}` messages are
 * reports (handed to `onProgress`), `{op: 'error', message}` rejects the oldest request, anything
 * else resolves it; the worker's exit rejects whatever is still waiting.
 */
export class WorkerRpc<To, From extends { op: string }> {
  readonly child: ChildProcess;
  private readonly waiting: { resolve: (m: From) => void; reject: (e: Error) => void }[] = [];

  constructor(
    private readonly name: string,
    script: string,
    onProgress: (m: From) => void = () => {},
  ) {
    this.child = forkWorker(name, script);
    this.child.on('message', (m: From) => {
      if (m.op === 'progress') return onProgress(m);
      const w = this.waiting.shift();
      if (!w) return;
      if (m.op === 'error') w.reject(new Error(`${name} worker: ${(m as { message?: string }).message}`));
      else w.resolve(m);
    });
    this.child.on('exit', (code) => {
      for (const w of this.waiting.splice(0)) w.reject(new Error(`${name} worker exited (${code})`));
    });
  }

  request(m: To): Promise<From> {
    return new Promise((resolve, reject) => {
      if (!this.child.connected) return reject(new Error(`${this.name} worker is gone`));
      this.waiting.push({ resolve, reject });
      this.child.send(m as object);
    });
  }

  /** Asks it to close (if it still listens, for at most `closeMs`), then stops it. */
  async close(closeRequest: To, closeMs: number): Promise<void> {
    if (this.child.connected) await Promise.race([this.request(closeRequest).catch(() => {}), sleep(closeMs)]);
    await stopChild(this.child, 2000);
  }
}

/** Waits until `url` answers 200 (the child must stay alive meanwhile). */
export async function waitReady(child: ChildProcess, url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`${url}: the process exited (${child.exitCode ?? child.signalCode}) before it was ready`);
    const status = await fetch(url, { signal: AbortSignal.timeout(2000) }).then(
      (r) => r.status,
      () => 0,
    );
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

/** Clock ticks per second of /proc's CPU times. */
export const CLK_TCK = (() => {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isFinite(n) && n > 0 ? n : 100;
  } catch {
    return 100;
  }
})();

/** utime and stime of a process (all its threads), in seconds; null once it is gone. */
export function cpuTimes(pid: number): { user: number; sys: number } | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { user: Number(f[11]) / CLK_TCK, sys: Number(f[12]) / CLK_TCK };
  } catch {
    return null;
  }
}

/** utime + stime of a process, in seconds; null once it is gone. */
export function cpuSeconds(pid: number): number | null {
  const t = cpuTimes(pid);
  return t === null ? null : t.user + t.sys;
}

/** Busy and total jiffies of the whole machine (/proc/stat), for cores busy over a phase. */
export function machineJiffies(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest is already in user)
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/** Removes a run's topics from a shared broker (best effort, bounded). */
export async function deleteTopics(brokers: string[], topics: string[]): Promise<void> {
  const admin = new Kafka({
    brokers,
    clientId: 'fanout-bench-cleanup',
    logLevel: logLevel.NOTHING,
    retry: { retries: 1 },
    ...kafkajsSecurity(),
  }).admin();
  const work = (async () => {
    await admin.connect();
    await admin.deleteTopics({ topics, timeout: 5000 });
  })();
  const ok = await Promise.race([work.then(() => true), sleep(10_000).then(() => false)]).catch(() => false);
  await admin.disconnect().catch(() => {});
  log(ok ? `deleted topics ${topics.join(', ')}` : `could not delete topics ${topics.join(', ')}`);
}

/** A benchmark option: `--flag value`, `--flag=value` (first of `flags` given), else `env`, else `def`. */
export function strParam(flags: string | string[], env: string, def: string): string {
  const argv = process.argv.slice(2);
  for (const f of Array.isArray(flags) ? flags : [flags]) {
    const i = argv.indexOf(f);
    if (i >= 0 && argv[i + 1] !== undefined) return argv[i + 1]!;
    const eq = argv.find((a) => a.startsWith(f + '='));
    if (eq) return eq.slice(f.length + 1);
  }
  return process.env[env] || def;
}

/** A non-negative number option (see strParam); anything else stops the benchmark with its name. */
export function numParam(flags: string | string[], env: string, def: number): number {
  const raw = strParam(flags, env, String(def));
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0)
    throw new Error(`${[flags].flat().join(' / ')} / ${env}: expected a non-negative number, got ${JSON.stringify(raw)}`);
  return n;
}

/**
 * Runs a benchmark's main and exits with its code; past `boundS` seconds every child is killed
 * and the process exits 2, so no run outlives its bound.
 */
export function runBench(main: () => Promise<number>, boundS: number): void {
  const overall = setTimeout(() => {
    log(`overall time bound (${boundS} s) exceeded; killing children`);
    killAll();
    process.exit(2);
  }, boundS * 1000);
  overall.unref();
  main().then(
    (code) => process.exit(code),
    (err) => {
      log(`FAILED: ${String(err)}`);
      process.exit(1);
    },
  );
}
