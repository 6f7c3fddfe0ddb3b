import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT, UnsecuredJWT } from 'jose';
import { signConnectToken } from '@fanout/auth';
import { startGateway, type RunningGateway } from '@fanout/gateway';
import { brokers, TestClient, uniqueTopics, waitFor } from '../../../test/helpers.js';

const SECRET = 'gateway-test-secret-0123456789-abcdef';
let gw: RunningGateway;
const clients: TestClient[] = [];

async function connect(token?: string): Promise<TestClient> {
  const c = await TestClient.connect(gw.wsUrl + (token ? `?token=${encodeURIComponent(token)}` : ''), { waitWelcome: false });
  clients.push(c);
  return c;
}

beforeAll(async () => {
  gw = await startGateway({
    brokers: brokers(),
    port: 0,
    servePage: false,
    tokenSecret: SECRET,
    publicNamespaces: ['prices'],
    ...uniqueTopics('tokens'),
  });
});
afterAll(async () => {
  for (const c of clients) c.close();
  await gw?.shutdown();
});

describe('connect tokens on the gateway', () => {
  it('lets anyone read a public namespace and refuses a gated one without a token pattern', async () => {
    const c = await connect();
    await waitFor(() => c.frames.find((f) => f.t === 'welcome'), 'welcome');
    expect(await c.subscribe('prices:AAPL')).toMatchObject({ t: 'subscribed' });
    expect(await c.subscribe('orders:desk-1')).toMatchObject({ t: 'error', code: 'forbidden_channel' });
  });

  it('opens gated namespaces that the token allows, and no others', async () => {
    const c = await connect(await signConnectToken(SECRET, { sub: 'alice', channels: ['orders:*'] }));
    expect(await waitFor(() => c.frames.find((f) => f.t === 'welcome'), 'welcome')).toMatchObject({ user: 'alice' });
    expect(await c.subscribe('orders:desk-1')).toMatchObject({ t: 'subscribed' });
    expect(await c.subscribe('risk:desk-1')).toMatchObject({ t: 'error', code: 'forbidden_channel' });
  });

  it("never lets a connection read another user's channel", async () => {
    const c = await connect(await signConnectToken(SECRET, { sub: 'alice', channels: ['*', 'user:bob'] }));
    await waitFor(() => c.frames.find((f) => f.t === 'welcome'), 'welcome');
    expect(await c.subscribe('user:bob')).toMatchObject({ t: 'error', code: 'forbidden_channel' });
    expect(await c.subscribe('user:*')).toMatchObject({ t: 'error', code: 'forbidden_channel' });
  });

  it.each([
    [
      'expired',
      async () =>
        new SignJWT({})
          .setProtectedHeader({ alg: 'HS256' })
          .setSubject('a')
          .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
          .sign(new TextEncoder().encode(SECRET)),
      'token_expired',
    ],
    ['unsigned (alg none)', async () => new UnsecuredJWT({}).setSubject('a').setExpirationTime('1h').encode(), 'token_invalid'],
    ['wrongly signed', async () => signConnectToken('some-other-secret-0123456789-abcdefgh', { sub: 'a' }), 'token_invalid'],
    ['garbage', async () => 'garbage', 'token_invalid'],
  ])('refuses an %s token with an error frame and close code 4501', async (_name, make, code) => {
    const c = await connect(await make());
    expect(await c.closed()).toBe(4501);
    expect(c.errors()[0]).toMatchObject({ code });
    expect(c.frames.find((f) => f.t === 'welcome')).toBeUndefined();
  });
});
