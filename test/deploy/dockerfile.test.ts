/**
 * The Dockerfile, checked statically (no Docker engine runs here): pinned base, every COPY source
 * present and not excluded by .dockerignore, every service's entry present, a non-root numeric
 * user, the uWebSockets.js v20.57 binary kept for the image's Node ABI (Node 24 on Debian 13's
 * glibc), and the gateway's native check at build time through its loader. The steps themselves were
 * replayed in a Debian 13 root (docs/operations.md, "What was verified where").
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UWS_BUILDS } from '../../services/gateway/src/native-uws.js';
import { ROOT, SERVICES, entryOf } from './deploy-tools.js';

interface Instruction {
  op: string;
  args: string;
  line: number;
}

/** Dockerfile instructions, with line continuations joined and comment lines dropped. */
function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let buf = '';
  let start = 0;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trimEnd();
    if (!buf && (line.trim() === '' || line.trim().startsWith('#'))) return;
    if (buf && line.trim().startsWith('#')) return; // comment inside a continuation
    if (!buf) start = i + 1;
    buf += (buf ? ' ' : '') + line.replace(/\\$/, '').trim();
    if (!line.endsWith('\\')) {
      const m = /^(\w+)\s+([\s\S]*)$/.exec(buf);
      if (m) out.push({ op: m[1]!.toUpperCase(), args: m[2]!, line: start });
      buf = '';
    }
  });
  return out;
}

const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
const ins = instructions(dockerfile);
const ignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));

/** Whether .dockerignore excludes a path (the patterns this project uses: dir/, **\/name, *.ext, !re-include). */
function ignored(path: string): boolean {
  let out = false;
  for (const pat of ignore) {
    const neg = pat.startsWith('!');
    const p = (neg ? pat.slice(1) : pat).replace(/\/$/, '');
    const re = new RegExp(
      '^' +
        p
          .split('**/')
          .map((s) =>
            s
              .replace(/[.+^${}()|[\]\\]/g, '\\$&')
              .replace(/\*/g, '[^/]*')
              .replace(/\?/g, '[^/]'),
          )
          .join('(?:.*/)?') +
        '(?:/.*)?$',
    );
    if (re.test(path)) out = !neg;
  }
  return out;
}

describe('Dockerfile', () => {
  it('builds every stage from a pinned Debian 13 (trixie) Node 24 base', () => {
    const arg = ins.find((i) => i.op === 'ARG' && i.args.startsWith('NODE_IMAGE='));
    expect(arg, 'ARG NODE_IMAGE=<image> before the first FROM').toBeDefined();
    const image = arg!.args.split('=')[1]!;
    // A full version (not `24`, `lts` or `latest`) of Node 24, the trixie variant: glibc 2.41, at
    // least the 2.38 the uWebSockets.js v20.57 binaries need (bookworm's 2.36 cannot load them,
    // alpine/musl has no glibc at all).
    expect(image).toMatch(/^node:24\.\d+\.\d+-trixie(-slim)?(@sha256:[0-9a-f]{64})?$/);
    const build = UWS_BUILDS.find((b) => b.module === 'uws-20-57')!;
    expect(build.abis).toContain('137'); // Node 24's ABI
    expect(Number(build.minGlibc.split('.')[1])).toBeLessThanOrEqual(41); // trixie's glibc 2.41
    const froms = ins.filter((i) => i.op === 'FROM').map((i) => i.args.split(/\s+/)[0]!);
    const stages = new Set(
      ins
        .filter((i) => i.op === 'FROM')
        .map((i) => /\bAS\s+(\S+)/i.exec(i.args)?.[1])
        .filter(Boolean),
    );
    for (const f of froms) expect(f === '${NODE_IMAGE}' || stages.has(f), `FROM ${f}`).toBe(true);
  });

  it('copies only sources that exist and that .dockerignore does not exclude', () => {
    const copies = ins.filter((i) => i.op === 'COPY' && !/--from=/.test(i.args));
    expect(copies.length).toBeGreaterThan(0);
    for (const c of copies) {
      const parts = c.args.split(/\s+/).filter((p) => !p.startsWith('--'));
      const sources = parts.slice(0, -1);
      for (const src of sources) {
        // ${SERVICE} stands for each service.
        const paths = src.includes('${SERVICE}') ? SERVICES.map((s) => src.replace('${SERVICE}', s)) : [src];
        for (const p of paths) {
          const rel = p.replace(/\/$/, '');
          expect(existsSync(join(ROOT, rel)), `COPY source ${p} (Dockerfile line ${c.line})`).toBe(true);
          expect(ignored(rel), `COPY source ${p} is excluded by .dockerignore`).toBe(false);
        }
      }
    }
  });

  it('keeps what the images need in the build context and leaves the rest out', () => {
    for (const needed of [
      'package.json',
      'package-lock.json',
      'packages/protocol/src/index.ts',
      'services/gateway/public/index.html',
      'services/router/public/status.html',
      'packages/client/src/index.ts',
    ]) {
      expect(ignored(needed), needed).toBe(false);
    }
    for (const left of [
      'node_modules/kafkajs/package.json',
      'services/gateway/node_modules/x',
      '.git/HEAD',
      'services/gateway/test/fanout.test.ts',
      'packages/kafka/test/partitioner.test.ts',
      'load-tests/ws-fanout.js',
      'charts/fanout/Chart.yaml',
      'docs/architecture.md',
    ]) {
      expect(ignored(left), left).toBe(true);
    }
  });

  it('has an entry point for every service it builds', () => {
    expect(dockerfile).toContain('services/${FANOUT_SERVICE}/src/main.ts');
    for (const s of SERVICES) {
      // The webhook dispatcher is written alongside this work; its entry is checked once it exists.
      if (s === 'dispatcher' && !existsSync(join(ROOT, 'services/dispatcher'))) continue;
      expect(existsSync(entryOf(s)), `services/${s}/src/main.ts`).toBe(true);
      expect(statSync(join(ROOT, 'services', s, 'package.json')).isFile()).toBe(true);
    }
  });

  it('runs as a non-root numeric user in the final stage, under an init that forwards SIGTERM', () => {
    const lastFrom = ins.map((i) => i.op).lastIndexOf('FROM');
    const final = ins.slice(lastFrom);
    const user = final.filter((i) => i.op === 'USER').pop();
    expect(user, 'USER in the final stage').toBeDefined();
    const [uid, gid] = user!.args.trim().split(':');
    expect(uid).toMatch(/^\d+$/); // numeric, so Kubernetes can verify runAsNonRoot
    expect(Number(uid)).toBeGreaterThan(0);
    expect(Number(gid ?? uid)).toBeGreaterThan(0);
    const entry = final.find((i) => i.op === 'ENTRYPOINT');
    expect(entry?.args).toContain('tini');
    expect(final.find((i) => i.op === 'CMD')?.args).toMatch(/exec node --import tsx/);
  });

  it("installs production dependencies of one workspace and keeps only the uWebSockets.js v20.57 binary of the image's Node ABI", () => {
    expect(dockerfile).toMatch(/npm ci --omit=dev --workspace="services\/\$\{SERVICE\}" --include-workspace-root/);
    // The ABI is the image's Node's (137 on Node 24), not a constant that could drift from the base.
    expect(dockerfile).toMatch(/abi="\$\(node -p process\.versions\.modules\)"/);
    expect(dockerfile).toMatch(/find node_modules\/uws-20-57 -name '\*\.node' ! -name "uws_linux_\$\{arch\}_\$\{abi\}\.node" -delete/);
    expect(dockerfile).toMatch(/test -f "node_modules\/uws-20-57\/uws_linux_\$\{arch\}_\$\{abi\}\.node"/);
    // The v20.30 build has no binary for Node 24: not in the image.
    expect(dockerfile).toMatch(/rm -rf node_modules\/uWebSockets\.js/);
    // The gateway's image fails to build when no native binary loads: the loader the gateway starts
    // with (services/gateway/src/native-uws.ts), not a copy of its check.
    expect(dockerfile).toMatch(/await import\('\.\/services\/gateway\/src\/native-uws\.ts'\); const \{ build \} = loadUws\(\)/);
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { name?: string; version?: string; dependencies?: Record<string, string> }>;
    };
    expect(lock.packages['node_modules/uws-20-57']).toMatchObject({ name: '@btc-vision/uwebsockets.js', version: '20.57.0' });
    // The gateway workspace depends on it, so `npm ci --workspace=services/gateway` installs it.
    expect(lock.packages['services/gateway']?.dependencies?.['uws-20-57']).toBe('npm:@btc-vision/uwebsockets.js@20.57.0');
  });
});
