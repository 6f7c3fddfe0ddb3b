/**
 * Development tokens: HS256 connect tokens signed with the dev secret, for `npm start`, the demo
 * page and tests. Production issuers sign their own (any JWT library; see docs/protocol.md).
 */
import { SignJWT } from 'jose';

export async function signConnectToken(
  secret: string,
  claims: { sub: string; channels?: string[]; ttlS?: number; issuer?: string; audience?: string },
): Promise<string> {
  let jwt = new SignJWT({ channels: claims.channels ?? [] })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(claims.sub)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + (claims.ttlS ?? 3600));
  if (claims.issuer) jwt = jwt.setIssuer(claims.issuer);
  if (claims.audience) jwt = jwt.setAudience(claims.audience);
  return jwt.sign(new TextEncoder().encode(secret));
}
