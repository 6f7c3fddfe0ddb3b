import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '@fanout/gateway';
import { freePort } from '@fanout/kafka';
import { brokers, TestClient, uniqueTopics, waitFor } from '../../../test/helpers.js';

const topics = uniqueTopics('lifecycle');
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const running: RunningGateway[] = [];
const children: ChildProcess[] = [];

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await Promise.all(running.map((g) => g.shutdown()));
});

describe('heartbeat', () => {
  it('reaps a client that stops answering pings and cleans up its subscriptions', async () => {
    const gw = await startGateway({ brokers: brokers(), port: 0, idleTimeoutS: 8, servePage: false, ...topics });
    running.push(gw);
    const alive = await TestClient.connect(gw.wsUrl);
    const dead = await TestClient.connect(gw.wsUrl);
    await alive.subscribe('hb:x');
    await dead.subscribe('hb:x');
    expect(gw.hub.subscriptionCount).toBe(2);
    // The dead client stops reading its socket: it never sees the pings, never pongs.
    (dead.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    await waitFor(() => gw.hub.connections.size === 1, 'the dead connection to be reaped', 30_000);
    expect(gw.hub.subscriptionCount).toBe(1);
    // The live client answered the same pings automatically and is still connected.
    expect(alive.closeCode).toBeNull();
    expect(await alive.request({ op: 'ping' })).toMatchObject({ t: 'pong' });
    alive.close();
    dead.close();
  }, 45_000);
});

describe('graceful drain on SIGTERM', () => {
  it('fails readiness, sends a jittered reconnect frame, closes with 4000 and exits 0 within the grace period', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', 'services/gateway/src/main.ts', '--region', 'eu', '--node', 'gw-drain'], {
      cwd: ROOT,
      env: {
        ...process.env,
        FANOUT_BROKERS: brokers().join(','),
        FANOUT_PORT: String(port),
        FANOUT_TOPIC_BROADCAST: topics.topicBroadcast,
        FANOUT_TOPIC_USERS: topics.topicUsers,
        FANOUT_DRAIN_JITTER_MS: '500',
        FANOUT_DRAIN_DELAY_MS: '1500',
        FANOUT_SHUTDOWN_GRACE_MS: '8000',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let output = '';
    child.stdout!.on('data', (d) => (output += d));
    child.stderr!.on('data', (d) => (output += d));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const base = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 60_000;
    while (
      (await fetch(base + '/readyz').then(
        (r) => r.status,
        () => 0,
      )) !== 200
    ) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`the gateway did not become ready:\n${output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const c = await TestClient.connect(`ws://127.0.0.1:${port}/v1/ws`);
    await c.subscribe('prices:AAPL');

    const t0 = Date.now();
    child.kill('SIGTERM');
    const frame = await waitFor(() => c.frames.find((f) => f.t === 'reconnect'), 'a reconnect frame');
    expect(frame).toMatchObject({ t: 'reconnect', reason: 'shutdown' });
    expect((frame as { delay_ms: number }).delay_ms).toBeGreaterThanOrEqual(0);
    expect((frame as { delay_ms: number }).delay_ms).toBeLessThanOrEqual(500);
    const ready = await fetch(base + '/readyz').then(
      (r) => r.status,
      () => 'refused',
    );
    expect(ready).toBe(503);
    // A new connection during the drain is refused.
    await expect(TestClient.connect(`ws://127.0.0.1:${port}/v1/ws`)).rejects.toThrow(/503/);
    expect(await c.closed()).toBe(4000);
    expect(c.closeReason).toBe('service restart');
    expect(await exited).toBe(0);
    expect(Date.now() - t0).toBeLessThan(8000);
  }, 90_000);
});
