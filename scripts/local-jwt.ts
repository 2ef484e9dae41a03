// Tokens for the local stack, shaped as the deployed JWT authorizer expects them: the issuer and
// audience serverless.yml sets for the `local` stage, the tenant in the `tenant_id` claim. Signed
// (HS256) with a key kept in the local folder; serverless-offline checks issuer, audience and
// expiry as API Gateway does, and the function reads the claim through the same path as deployed.
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { SignJWT } from 'jose'

export const LOCAL_JWT = { issuer: 'http://localhost/tenant-pools-local', audience: 'tenant-pools' } as const

function signingKey(dir: string): Uint8Array {
  const file = join(dir, 'jwt-key')
  if (!existsSync(file)) {
    mkdirSync(dir, { recursive: true })
    writeFileSync(file, randomBytes(32).toString('base64url'), { mode: 0o600 })
  }
  return new TextEncoder().encode(readFileSync(file, 'utf8'))
}

/** A token for `tenantId` (or none: a token with no tenant claim), valid for `ttlSeconds`. */
export function localToken(dir: string, tenantId: string | undefined, ttlSeconds = 3_600): Promise<string> {
  return new SignJWT(tenantId === undefined ? {} : { tenant_id: tenantId })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer(LOCAL_JWT.issuer)
    .setAudience(LOCAL_JWT.audience)
    .setSubject(`local:${tenantId ?? 'nobody'}`)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds)
    .sign(signingKey(dir))
}
