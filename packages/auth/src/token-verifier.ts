/**
 * Verifies connect tokens (JWT) with jose: HS256 with a shared secret, and/or RS256 with keys from
 * a JWKS (a URL, fetched and cached by jose, or an inline JSON key set). `alg: none` and any
 * algorithm not configured are refused. The user id is `sub`; the channel patterns are in a claim
 * (default `channels`).
 */
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeProtectedHeader,
  errors as joseErrors,
  jwtVerify,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose';
import { FanoutError } from '@fanout/protocol';
import type { Principal } from './channel-permissions.js';

export interface TokenVerifierOptions {
  /** HS256 shared secret (at least 32 bytes); empty disables HS256. */
  hs256Secret?: string;
  /** RS256 keys: a JWKS URL. */
  jwksUrl?: string;
  /** RS256 keys: an inline JWKS. */
  jwks?: JSONWebKeySet;
  /** Required `iss` and `aud`, when set. */
  issuer?: string;
  audience?: string;
  /** Name of the claim holding channel patterns. */
  channelsClaim?: string;
  /** Allowed clock skew, in seconds. */
  clockToleranceS?: number;
}

/** Most bytes a token may have (tokens arrive in URLs). */
const MAX_TOKEN_BYTES = 8192;

export class TokenVerifier {
  private readonly secret: Uint8Array | null;
  private readonly keySet: JWTVerifyGetKey | null;
  private readonly claim: string;

  constructor(private readonly opts: TokenVerifierOptions) {
    this.secret = opts.hs256Secret ? new TextEncoder().encode(opts.hs256Secret) : null;
    if (this.secret && this.secret.length < 32) throw new Error('the HS256 secret must be at least 32 bytes');
    this.keySet = opts.jwksUrl ? createRemoteJWKSet(new URL(opts.jwksUrl)) : opts.jwks ? createLocalJWKSet(opts.jwks) : null;
    this.claim = opts.channelsClaim ?? 'channels';
  }

  get enabled(): boolean {
    return this.secret !== null || this.keySet !== null;
  }

  async verify(token: string): Promise<Principal> {
    if (token.length > MAX_TOKEN_BYTES)
      throw new FanoutError('token_invalid', `The connect token is longer than ${MAX_TOKEN_BYTES} bytes.`);
    let alg: string | undefined;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      throw new FanoutError('token_invalid', 'The connect token is not a JWT (header.payload.signature).');
    }
    const common = {
      ...(this.opts.issuer ? { issuer: this.opts.issuer } : {}),
      ...(this.opts.audience ? { audience: this.opts.audience } : {}),
      clockTolerance: this.opts.clockToleranceS ?? 5,
      requiredClaims: ['sub', 'exp'],
    };
    let payload: JWTPayload;
    try {
      if (alg === 'HS256' && this.secret) payload = (await jwtVerify(token, this.secret, { ...common, algorithms: ['HS256'] })).payload;
      else if (alg === 'RS256' && this.keySet)
        payload = (await jwtVerify(token, this.keySet, { ...common, algorithms: ['RS256'] })).payload;
      else throw new FanoutError('token_invalid', `Connect tokens signed with ${JSON.stringify(alg)} are not accepted here.`);
    } catch (err) {
      if (err instanceof FanoutError) throw err;
      if (err instanceof joseErrors.JWTExpired) throw new FanoutError('token_expired', undefined, { cause: err });
      // The keys could not be fetched: the server's problem, not the token's. Retriable.
      if (
        err instanceof joseErrors.JWKSTimeout ||
        (err instanceof TypeError && /fetch/i.test(err.message)) ||
        (err instanceof joseErrors.JOSEError && err.code === 'ERR_JOSE_GENERIC')
      ) {
        throw new FanoutError('token_keys_unavailable', undefined, { cause: err });
      }
      throw new FanoutError('token_invalid', `The connect token was refused: ${(err as Error).message}.`, { cause: err });
    }
    if (typeof payload.sub !== 'string' || !/^[A-Za-z0-9._=@-]{1,200}$/.test(payload.sub)) {
      throw new FanoutError('token_invalid', 'The connect token\'s "sub" must be a user id of 1 to 200 of [A-Za-z0-9._=@-].');
    }
    const raw = payload[this.claim] ?? [];
    if (!Array.isArray(raw) || raw.length > 1000 || raw.some((p) => typeof p !== 'string' || p.length > 240)) {
      throw new FanoutError('token_invalid', `The connect token's "${this.claim}" claim must be an array of channel patterns.`);
    }
    return { userId: payload.sub, patterns: raw as string[] };
  }
}
