/**
 * The uWebSockets.js loader (services/gateway/src/native-uws.ts): which build it picks for a Node
 * ABI and glibc, and, with the builds really installed, that the one it loads on this runtime is
 * native. CI runs this file on Node 20 (Debian 12: the 20.30 build) and on Node 24 (Debian 13:
 * the 20.57 build).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { currentRuntime, isNativeUws, loadUws, NativeUwsError, planUwsLoad, UWS_BUILDS, type UwsRuntime } from '../src/native-uws.js';

const ROOT = join(import.meta.dirname, '../../..');
const linux = (abi: string, glibc: string | null): UwsRuntime => ({ node: `v-abi${abi}`, abi, platform: 'linux', arch: 'x64', glibc });
const picked = (r: UwsRuntime) => planUwsLoad(r).candidates.map((b) => b.module);

describe('planUwsLoad', () => {
  it('Node 24 on Debian 13 (ABI 137, glibc 2.41): the 20.57 build', () => {
    const plan = planUwsLoad(linux('137', '2.41'));
    expect(plan.candidates.map((b) => b.module)).toEqual(['uws-20-57']);
    expect(plan.skipped.map((s) => [s.build.module, s.reason])).toEqual([
      ['uWebSockets.js', 'no binary for Node ABI 137 (it has 93, 108, 115: Node 16, 18, 20)'],
    ]);
  });

  it('Node 20 on Debian 12 (ABI 115, glibc 2.36): the 20.30 build, the 20.57 build needing glibc 2.38', () => {
    const plan = planUwsLoad(linux('115', '2.36'));
    expect(plan.candidates.map((b) => b.module)).toEqual(['uWebSockets.js']);
    expect(plan.skipped.map((s) => [s.build.module, s.reason])).toEqual([['uws-20-57', 'needs glibc >= 2.38; this system has 2.36']]);
  });

  it('Node 20 where both load: the 20.57 build first, the 20.30 build after it', () => {
    expect(picked(linux('115', '2.38'))).toEqual(['uws-20-57', 'uWebSockets.js']);
    expect(picked(linux('115', '2.41'))).toEqual(['uws-20-57', 'uWebSockets.js']);
  });

  it('Node 22 or 25 need glibc 2.38; Node 26 and musl have no build', () => {
    expect(picked(linux('127', '2.40'))).toEqual(['uws-20-57']);
    expect(picked(linux('141', '2.38'))).toEqual(['uws-20-57']);
    expect(picked(linux('127', '2.36'))).toEqual([]);
    expect(picked(linux('147', '2.41'))).toEqual([]);
    const musl = planUwsLoad(linux('137', null));
    expect(musl.candidates).toEqual([]);
    expect(musl.skipped[0]!.reason).toMatch(/no glibc/);
  });

  it('compares glibc versions by number, not as text', () => {
    expect(picked(linux('137', '2.4'))).toEqual([]); // 2.4 < 2.38
    expect(picked(linux('137', '2.100'))).toEqual(['uws-20-57']);
    expect(picked(linux('137', '3.0'))).toEqual(['uws-20-57']);
    expect(picked(linux('115', '2.27'))).toEqual(['uWebSockets.js']);
    expect(picked(linux('115', '2.26'))).toEqual([]);
  });

  it('checks glibc on Linux only', () => {
    expect(
      planUwsLoad({ node: 'v24', abi: '137', platform: 'darwin', arch: 'arm64', glibc: undefined }).candidates.map((b) => b.module),
    ).toEqual(['uws-20-57']);
  });
});

describe('NativeUwsError', () => {
  it('names the runtime, why each build did not load, and what to install', () => {
    const runtime = linux('127', '2.36');
    const plan = planUwsLoad(runtime);
    const err = new NativeUwsError(plan.skipped.map((s) => `${s.build.source}: ${s.reason}`).join('; '), runtime);
    expect(err.message).toContain('no native build loads on v-abi127 (ABI 127) on linux-x64, glibc 2.36');
    expect(err.message).toContain('@btc-vision/uwebsockets.js@20.57.0: needs glibc >= 2.38; this system has 2.36');
    expect(err.message).toContain('@trufflesuite/uws-js-unofficial@20.30.0-unofficial.0: no binary for Node ABI 127');
    expect(err.message).toContain('Install one of: Node 24 on glibc >= 2.38 (Debian 13 and later');
    expect(err.message).toContain('on older glibc (Debian 12), Node 20 for @trufflesuite/uws-js-unofficial@20.30.0-unofficial.0');
  });
});

describe('loadUws, with the builds installed in node_modules', () => {
  const require = createRequire(import.meta.url);
  const runtime = currentRuntime();
  const glibcAtLeast238 = runtime.glibc ? Number(runtime.glibc.split('.')[1]) >= 38 : false;
  const saved = process.env.UWS_USE_FALLBACK;
  afterEach(() => {
    if (saved === undefined) delete process.env.UWS_USE_FALLBACK;
    else process.env.UWS_USE_FALLBACK = saved;
  });

  it('loads a native build on this runtime', () => {
    const { uws, build } = loadUws();
    expect(isNativeUws(uws), `${runtime.node}, ABI ${runtime.abi}, glibc ${runtime.glibc}`).toBe(true);
    expect(build.module).toBe(planUwsLoad(runtime).candidates[0]!.module);
    // Node 24 (CI's Debian 13 root) runs the 20.57 build; Node 20 on Debian 12 the 20.30 build.
    if (runtime.abi === '137') expect(build.module).toBe('uws-20-57');
    if (runtime.abi === '115' && !glibcAtLeast238) expect(build.module).toBe('uWebSockets.js');
    expect(typeof uws.App().ws).toBe('function');
  });

  it('goes on to the next build when a binary fails to load (glibc too old for the one claimed)', () => {
    // Claims glibc 2.99: the 20.57 build is tried first. On Debian 12 its binary does not load
    // (GLIBC_2.38 not found) and the 20.30 build is loaded; on Debian 13 the 20.57 build loads.
    const errors: string[] = [];
    const { uws, build } = loadUws({
      runtime: { ...runtime, glibc: '2.99' },
      load: (m) => {
        try {
          return require(m);
        } catch (err) {
          errors.push(String(err));
          throw err;
        }
      },
    });
    expect(isNativeUws(uws)).toBe(true);
    if (runtime.abi === '115') {
      expect(build.module).toBe(glibcAtLeast238 ? 'uws-20-57' : 'uWebSockets.js');
      if (!glibcAtLeast238) expect(errors.join('\n')).toMatch(/GLIBC_2\.38/);
    } else {
      expect(build.module).toBe('uws-20-57');
    }
  });

  it("refuses the 20.30 build's JavaScript fallback", () => {
    const fallback = require('uWebSockets.js/dist/index.js') as unknown;
    expect(isNativeUws(fallback)).toBe(false);
    const build = UWS_BUILDS.find((b) => b.module === 'uWebSockets.js')!;
    expect(() => loadUws({ runtime: linux('115', '2.36'), builds: [build], load: () => fallback })).toThrow(
      /its native binary did not load \(the JavaScript fallback was\)/,
    );
  });

  it('says when a build is not installed', () => {
    const build = { ...UWS_BUILDS[0]!, module: 'uws-not-installed' };
    expect(() => loadUws({ runtime: { ...runtime, abi: build.abis[0]!, glibc: '2.41' }, builds: [build] })).toThrow(
      /@btc-vision\/uwebsockets\.js@20\.57\.0: not installed \(node_modules\/uws-not-installed\).*run npm ci/,
    );
  });

  it('refuses to start when UWS_USE_FALLBACK is set', () => {
    process.env.UWS_USE_FALLBACK = '1';
    expect(() => loadUws()).toThrow(NativeUwsError);
  });

  it('both builds are dependencies pinned by package-lock.json, at the versions the loader names', () => {
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { name?: string; version?: string; integrity?: string; dependencies?: Record<string, string> }>;
    };
    for (const b of UWS_BUILDS) {
      const [name, version] = [b.source.slice(0, b.source.lastIndexOf('@')), b.source.slice(b.source.lastIndexOf('@') + 1)];
      const entry = lock.packages[`node_modules/${b.module}`];
      expect(entry, b.module).toBeDefined();
      expect(entry!.name).toBe(name);
      expect(entry!.version).toBe(version);
      expect(entry!.integrity).toMatch(/^sha512-/);
      expect(lock.packages['services/gateway']!.dependencies![b.module]).toBe(`npm:${b.source}`);
      const installed = JSON.parse(readFileSync(join(ROOT, 'node_modules', b.module, 'package.json'), 'utf8')) as {
        name: string;
        version: string;
      };
      expect(`${installed.name}@${installed.version}`).toBe(b.source);
    }
  });
});

describe('one loader', () => {
  it('nothing but native-uws.ts loads a uWebSockets.js build (other files import its types only)', () => {
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        if (e.name === 'node_modules' || e.name.startsWith('.')) continue;
        const path = join(dir, e.name);
        if (e.isDirectory()) walk(path);
        else if (/\.(ts|mts|js|mjs|cjs)$/.test(e.name)) files.push(path);
      }
    };
    for (const dir of ['services', 'packages', 'bench', 'test', 'fuzz', 'scripts']) walk(join(ROOT, dir));
    expect(files.length).toBeGreaterThan(100);
    const modules = UWS_BUILDS.map((b) => b.module.replace(/[.]/g, '\\.')).join('|');
    // A value import, a re-export, require() or import() (not `typeof import()`) of either build's module name.
    const load = new RegExp(
      `(?:^|\\n)\\s*(?:import(?!\\s+type\\b)[^'";]*?from\\s*|export[^'";]*?from\\s*|import\\s*)['"](?:${modules})['"]|(?<!typeof\\s*)(?:require|import)\\(\\s*['"](?:${modules})['"]`,
    );
    const loaders = files.filter((f) => load.test(readFileSync(f, 'utf8'))).map((f) => f.slice(ROOT.length).replace(/^\//, ''));
    expect(loaders).toEqual([]); // native-uws.ts loads by module name from UWS_BUILDS, not by a literal
  });
});
