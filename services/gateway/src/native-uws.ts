/**
 * The one place uWebSockets.js is loaded. Two builds are installed (both pinned in package-lock.json),
 * and this module picks the one whose native binary loads on the running Node and C library:
 *
 * - `uws-20-57`: `@btc-vision/uwebsockets.js@20.57.0`, a republish of uWebSockets.js v20.57.0 with
 *   Linux x64 binaries for Node ABIs 115, 127, 137, 141 (Node 20, 22, 24, 25), linked against
 *   glibc 2.38 (Debian 13 and later). The production runtime (Node 24 on Debian 13) uses it.
 * - `uWebSockets.js`: `@trufflesuite/uws-js-unofficial@20.30.0-unofficial.0` (uWebSockets.js
 *   v20.30.0, 2023), binaries for ABIs 93, 108, 115 (Node 16, 18, 20), glibc 2.27. Development on
 *   older hosts (Debian 12, glibc 2.36, Node 20) uses it.
 *
 * The newer build is preferred wherever it loads. The 20.30 build falls back, with only a console
 * warning, to a slow pure-JS implementation when its binary does not load; the gateway refuses to
 * run on that fallback (it would pass tests and collapse in production), and says what to install
 * when no build loads. The types are those of the 20.30 build (`uWebSockets.js`), the API both share.
 */
import { createRequire } from 'node:module';

export type Uws = typeof import('uWebSockets.js');

export interface UwsBuild {
  /** The name it is installed under in node_modules (an npm alias). */
  module: string;
  /** What npm installs under that name. */
  source: string;
  /** The uWebSockets.js release it is built from. */
  upstream: string;
  /** Node ABIs (process.versions.modules) it has binaries for. */
  abis: readonly string[];
  /** The Node versions those are. */
  nodes: string;
  /** The glibc its Linux binaries need (the newest GLIBC_ symbol version they link, per objdump -T). */
  minGlibc: string;
}

/** In order of preference. */
export const UWS_BUILDS: readonly UwsBuild[] = [
  {
    module: 'uws-20-57',
    source: '@btc-vision/uwebsockets.js@20.57.0',
    upstream: 'v20.57.0',
    abis: ['115', '127', '137', '141'],
    nodes: 'Node 20, 22, 24, 25',
    minGlibc: '2.38',
  },
  {
    module: 'uWebSockets.js',
    source: '@trufflesuite/uws-js-unofficial@20.30.0-unofficial.0',
    upstream: 'v20.30.0',
    abis: ['93', '108', '115'],
    nodes: 'Node 16, 18, 20',
    minGlibc: '2.27',
  },
];

export interface UwsRuntime {
  node: string;
  /** process.versions.modules */
  abi: string;
  platform: string;
  arch: string;
  /** glibc version at run time; null on Linux without glibc (musl: Alpine), undefined elsewhere. */
  glibc: string | null | undefined;
}

export function currentRuntime(): UwsRuntime {
  let glibc: string | null | undefined;
  if (process.platform === 'linux') {
    const report = process.report as { excludeNetwork?: boolean; getReport(): object };
    const exclude = report.excludeNetwork;
    report.excludeNetwork = true; // no DNS lookups for the report's network section
    try {
      const header = (report.getReport() as { header?: { glibcVersionRuntime?: string } }).header;
      glibc = header?.glibcVersionRuntime ?? null;
    } finally {
      report.excludeNetwork = exclude;
    }
  }
  return { node: process.version, abi: process.versions.modules, platform: process.platform, arch: process.arch, glibc };
}

function versionAtLeast(have: string, need: string): boolean {
  const a = have.split('.').map(Number);
  const b = need.split('.').map(Number);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return x > y;
  }
  return true;
}

export interface UwsPlan {
  /** Builds to try, in order. */
  candidates: UwsBuild[];
  /** Builds left out, and why. */
  skipped: { build: UwsBuild; reason: string }[];
}

/** Which builds can load on a runtime, from their ABIs and glibc alone (nothing is loaded). */
export function planUwsLoad(runtime: UwsRuntime, builds: readonly UwsBuild[] = UWS_BUILDS): UwsPlan {
  const plan: UwsPlan = { candidates: [], skipped: [] };
  for (const build of builds) {
    if (!build.abis.includes(runtime.abi)) {
      plan.skipped.push({ build, reason: `no binary for Node ABI ${runtime.abi} (it has ${build.abis.join(', ')}: ${build.nodes})` });
    } else if (runtime.platform === 'linux' && runtime.glibc === null) {
      plan.skipped.push({ build, reason: `its Linux binaries need glibc >= ${build.minGlibc}; this system has no glibc (musl?)` });
    } else if (runtime.platform === 'linux' && runtime.glibc && !versionAtLeast(runtime.glibc, build.minGlibc)) {
      plan.skipped.push({ build, reason: `needs glibc >= ${build.minGlibc}; this system has ${runtime.glibc}` });
    } else {
      plan.candidates.push(build);
    }
  }
  return plan;
}

/** Whether a loaded module is uWebSockets.js' native binary (not the 20.30 build's JavaScript fallback). */
export function isNativeUws(mod: unknown): boolean {
  const m = mod as { App?: unknown; getParts?: unknown } | null;
  return (
    !!m &&
    typeof m.getParts === 'function' &&
    typeof m.App === 'function' &&
    /\[native code\]/.test(Function.prototype.toString.call(m.App))
  );
}

export class NativeUwsError extends Error {
  constructor(detail: string, runtime: UwsRuntime = currentRuntime(), builds: readonly UwsBuild[] = UWS_BUILDS) {
    const system = `${runtime.node} (ABI ${runtime.abi}) on ${runtime.platform}-${runtime.arch}${
      runtime.platform === 'linux' ? `, glibc ${runtime.glibc ?? 'none'}` : ''
    }`;
    const [newest, oldest] = [builds[0], builds[builds.length - 1]];
    super(
      `uWebSockets.js: no native build loads on ${system}. ${detail}. Install one of: ` +
        (newest ? `Node 24 on glibc >= ${newest.minGlibc} (Debian 13 and later; node:24-trixie-slim) for ${newest.source}` : '') +
        (oldest && oldest !== newest ? `; or, on older glibc (Debian 12), Node 20 for ${oldest.source}` : '') +
        `. Both are installed by npm ci (as ${builds.map((b) => b.module).join(' and ')}); if one is missing, run npm ci.`,
    );
    this.name = 'NativeUwsError';
  }
}

export interface LoadedUws {
  uws: Uws;
  build: UwsBuild;
}

/**
 * Loads the first build of the plan whose native binary loads. `load` is `require` by default;
 * tests pass their own to load from elsewhere.
 */
export function loadUws(
  options: { runtime?: UwsRuntime; builds?: readonly UwsBuild[]; load?: (module: string) => unknown } = {},
): LoadedUws {
  const runtime = options.runtime ?? currentRuntime();
  const builds = options.builds ?? UWS_BUILDS;
  if (/^(1|true)$/i.test(process.env.UWS_USE_FALLBACK ?? '')) {
    throw new NativeUwsError('UWS_USE_FALLBACK is set: the gateway does not run on the JavaScript fallback', runtime, builds);
  }
  const load = options.load ?? createRequire(import.meta.url);
  const plan = planUwsLoad(runtime, builds);
  const why = plan.skipped.map(({ build, reason }) => `${build.source}: ${reason}`);
  for (const build of plan.candidates) {
    let mod: unknown;
    try {
      mod = load(build.module);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const missing = e.code === 'MODULE_NOT_FOUND' && e.message.includes(`'${build.module}'`);
      const lines = String(e.message)
        .split('\n')
        .filter((l) => l.trim());
      const error = lines.length > 1 ? `${lines[0]} (${lines[lines.length - 1]!.trim()})` : (lines[0] ?? String(err));
      why.push(`${build.source}: ${missing ? `not installed (node_modules/${build.module})` : error}`);
      continue;
    }
    if (isNativeUws(mod)) return { uws: mod as Uws, build };
    why.push(`${build.source}: its native binary did not load (the JavaScript fallback was)`);
  }
  throw new NativeUwsError(why.join('; '), runtime, builds);
}
