import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { exportJWK, generateKeyPair, SignJWT, UnsecuredJWT } from 'jose';
import { ANONYMOUS, ChannelPermissions, signConnectToken, TokenVerifier } from '@fanout/auth';
import { FanoutError } from '@fanout/protocol';

const SECRET = 'a-test-secret-that-is-long-enough-0123456789';

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return e instanceof FanoutError ? e.code : `unexpected: ${String(e)}`;
  }
}

describe('HS256 connect tokens', () => {
  const v = new TokenVerifier({ hs256Secret: SECRET });

  it('accept a valid token and read sub and channel patterns', async () => {
    const t = await signConnectToken(SECRET, { sub: '42', channels: ['prices:*'] });
    expect(await v.verify(t)).toEqual({ userId: '42', patterns: ['prices:*'] });
  });

  it('refuse expired, unsigned (alg none), wrongly signed and malformed tokens with their codes', async () => {
    const expired = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('42')
      .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
      .sign(new TextEncoder().encode(SECRET));
    const unsigned = new UnsecuredJWT({ channels: ['*'] }).setSubject('42').setExpirationTime('1h').encode();
    const wrongKey = await signConnectToken('another-secret-that-is-also-long-enough-xyz', { sub: '42' });
    const noExp = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('42').sign(new TextEncoder().encode(SECRET));
    expect(await codeOf(v.verify(expired))).toBe('token_expired');
    expect(await codeOf(v.verify(unsigned))).toBe('token_invalid');
    expect(await codeOf(v.verify(wrongKey))).toBe('token_invalid');
    expect(await codeOf(v.verify(noExp))).toBe('token_invalid');
    expect(await codeOf(v.verify('not.a.jwt'))).toBe('token_invalid');
    expect(await codeOf(v.verify('x'.repeat(10_000)))).toBe('token_invalid');
  });
});

describe('RS256 connect tokens from a JWKS', () => {
  let server: ReturnType<typeof createServer> | undefined;
  afterAll(() => server?.close());

  it('verify against keys served from a JWKS URL, and refuse an RS256 token from an unknown key', async () => {
    const { publicKey, privateKey } = await generateKeyPair('RS256');
    const other = await generateKeyPair('RS256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
    const v = new TokenVerifier({ jwksUrl: url });
    const sign = (key: Parameters<SignJWT['sign']>[0], kid: string) =>
      new SignJWT({ channels: ['news:*'] }).setProtectedHeader({ alg: 'RS256', kid }).setSubject('u-7').setExpirationTime('5m').sign(key);
    expect(await v.verify(await sign(privateKey, 'k1'))).toEqual({ userId: 'u-7', patterns: ['news:*'] });
    expect(await codeOf(v.verify(await sign(other.privateKey, 'k1')))).toBe('token_invalid');
    // An HS256 token is refused when only RS256 is configured (no algorithm confusion).
    expect(await codeOf(v.verify(await signConnectToken(SECRET, { sub: 'u-7' })))).toBe('token_invalid');
  });
});

describe('channel permissions', () => {
  const perms = new ChannelPermissions(['prices']);
  const alice = { userId: 'alice', patterns: ['news:*', 'orders:desk-1'] };

  it('let a user read only their own user channel', () => {
    expect(perms.allows(alice, 'user:alice')).toBe(true);
    expect(perms.allows(alice, 'user:bob')).toBe(false);
    expect(perms.allows(ANONYMOUS, 'user:alice')).toBe(false);
    expect(perms.allows({ userId: 'alice', patterns: ['*', 'user:*'] }, 'user:*')).toBe(false);
    expect(perms.allows({ userId: 'alice', patterns: ['*', 'user:bob'] }, 'user:bob')).toBe(false);
  });

  it('open public namespaces to anyone and gate the rest by the token patterns', () => {
    expect(perms.allows(ANONYMOUS, 'prices:AAPL')).toBe(true);
    expect(perms.allows(ANONYMOUS, 'prices:*')).toBe(true);
    expect(perms.allows(ANONYMOUS, 'news:global')).toBe(false);
    expect(perms.allows(alice, 'news:global')).toBe(true);
    expect(perms.allows(alice, 'news:*')).toBe(true);
    expect(perms.allows(alice, 'orders:desk-1')).toBe(true);
    expect(perms.allows(alice, 'orders:desk-2')).toBe(false);
    expect(perms.allows(alice, 'orders:*')).toBe(false);
  });
});
