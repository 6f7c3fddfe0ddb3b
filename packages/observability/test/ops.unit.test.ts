/** The ops face every service answers (node:http and uWS both write what opsAnswer says). */
import { describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { ERRORS } from '@fanout/protocol';
import { Health } from '../src/health.js';
import { answerOps, isOpsPath, opsAnswer, statusLine, type OpsAnswer, type UwsOpsResponse } from '../src/ops.js';

const deps = (health = new Health(['kafka'])) => ({ health, registry: new Registry() });

describe('the ops face', () => {
  it('/healthz is liveness: 200 until something broke for good, whatever readiness says', async () => {
    const d = deps();
    d.health.drain();
    expect(await opsAnswer('/healthz', 'GET', d)).toMatchObject({ status: 200, body: '{"ok":true}' });
    d.health.break('users consumer crashed: boom');
    expect(await opsAnswer('/healthz', 'GET', d)).toMatchObject({
      status: 503,
      body: '{"ok":false,"broken":"users consumer crashed: boom"}',
    });
  });

  it('/readyz is 503 with what it waits for, then 200', async () => {
    const d = deps();
    expect(await opsAnswer('/readyz', 'GET', d)).toMatchObject({
      status: 503,
      body: '{"ready":false,"draining":false,"waiting_for":["kafka"]}',
    });
    d.health.pass('kafka');
    expect((await opsAnswer('/readyz', 'HEAD', d)).status).toBe(200);
  });

  it('/metrics: the registry text on GET; HEAD does not collect; a failed collection is 500 internal', async () => {
    const d = deps();
    const get = await opsAnswer('/metrics', 'GET', d);
    expect(get).toMatchObject({ status: 200, headers: { 'content-type': d.registry.contentType, 'cache-control': 'no-store' } });
    expect(typeof get.body).toBe('string');
    let collected = 0;
    const failing = {
      ...d,
      registry: Object.assign(new Registry(), {
        metrics: () => {
          collected++;
          return Promise.reject(new Error('no'));
        },
      }),
    };
    expect(await opsAnswer('/metrics', 'HEAD', failing)).toMatchObject({ status: 200, body: null });
    expect(collected).toBe(0);
    const failed = await opsAnswer('/metrics', 'GET', failing);
    expect(failed.status).toBe(ERRORS.internal.status);
    expect(JSON.parse(failed.body!).error.code).toBe('internal');
  });

  it('any other method is 405 method_not_allowed with Allow: GET, HEAD', async () => {
    for (const path of ['/healthz', '/readyz', '/metrics'] as const) {
      const a = await opsAnswer(path, 'DELETE', deps());
      expect(a.status).toBe(ERRORS.method_not_allowed.status);
      expect(a.headers.allow).toBe('GET, HEAD');
      expect(JSON.parse(a.body!)).toEqual({
        error: { code: 'method_not_allowed', message: `${path} accepts GET and HEAD.`, retriable: false },
      });
    }
    expect(isOpsPath('/healthz')).toBe(true);
    expect(isOpsPath('/healthz/')).toBe(false);
  });

  it('on uWS: the same status line and headers, and no body for HEAD', async () => {
    const written: { status?: string; headers: [string, string][]; body?: string | null } = { headers: [] };
    const res: UwsOpsResponse = {
      onAborted: () => {},
      cork: (cb) => cb(),
      writeStatus: (s) => (written.status = s),
      writeHeader: (k, v) => written.headers.push([k, v]),
      end: (body) => (written.body = body ?? ''),
      endWithoutBody: () => (written.body = null),
    };
    const d = deps();
    answerOps(res, '/readyz', 'head', d);
    const want = (await opsAnswer('/readyz', 'GET', d)) as OpsAnswer;
    expect(written).toEqual({ status: statusLine(want.status), headers: Object.entries(want.headers), body: null });
    expect(statusLine(503)).toBe('503 Service Unavailable');
  });
});
