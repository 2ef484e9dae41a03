// The local stack's authorizer (serverless.yml, custom.offline.customAuthenticationProvider), in
// place of serverless-offline's JWT one. It checks what API Gateway's JWT authorizer checks (issuer,
// audience, expiry) and the signature too (HS256 with the local key that `npm run token` signs with),
// and refuses with the API's documented error shape, 401 TENANT_REQUIRED, where serverless-offline
// answered its own `{"statusCode":401,"error":"Unauthorized"}`. Deployed, API Gateway refuses a
// missing or invalid token itself (401 `{"message":"Unauthorized"}`) before any function runs.
// CommonJS: serverless-offline loads it with require().
'use strict'
const { randomUUID } = require('node:crypto')
const { readFileSync } = require('node:fs')
const { join, resolve } = require('node:path')
const { jwtVerify } = require('jose')

// As serverless.yml's local params (jwtIssuer, jwtAudience) and scripts/local-jwt.ts.
const LOCAL_JWT = { issuer: 'http://localhost/tenant-pools-local', audience: 'tenant-pools' }

/** The key `npm run token` signs with; read per request, since the first token may come after start. */
const signingKey = () =>
  new TextEncoder().encode(
    readFileSync(join(resolve(process.env.TENANT_POOLS_LOCAL_DIR ?? '.local'), 'jwt-key'), 'utf8'),
  )

const refuse = (h, why) =>
  h
    .response({
      error: {
        code: 'TENANT_REQUIRED',
        message: `No tenant: ${why}. npm run -s token -- <tenant> prints a token`,
        requestId: randomUUID(),
      },
    })
    .code(401)
    .header('www-authenticate', 'Bearer')
    .takeover()

module.exports = function offlineAuthorizer(endpoint, functionKey, method, path) {
  // serverless-offline asks for a strategy for every route, with an authorizer or not; names are unique.
  const name = `tenant-pools-local ${functionKey} ${method} ${path}`
  return {
    name,
    scheme: name,
    getAuthenticateFunction: () => ({
      async authenticate(request, h) {
        // Routes without an authorizer (health, admin), and every route with the authorizer turned off.
        if (!endpoint.authorizer || process.env.TENANT_POOLS_LOCAL_NO_AUTH === 'true') {
          return h.authenticated({ credentials: {} })
        }
        // serverless-offline lets this header replace the authorizer's claims (any tenant, no token):
        // a test hook, refused here so the local stack isolates tenants as the deployed one does.
        if (request.headers['sls-offline-authorizer-override'] !== undefined) {
          return refuse(h, 'the sls-offline-authorizer-override header is not accepted')
        }
        const token = /^Bearer (\S+)$/i.exec(request.headers.authorization ?? '')?.[1]
        if (!token) return refuse(h, 'the request carries no bearer token (Authorization: Bearer <token>)')
        let key
        try {
          key = signingKey()
        } catch {
          return refuse(h, 'the bearer token is refused (no local signing key yet)')
        }
        try {
          const { payload } = await jwtVerify(token, key, { ...LOCAL_JWT, algorithms: ['HS256'] })
          // As serverless-offline's JWT authorizer: the function reads the claims the event carries.
          return h.authenticated({ credentials: { claims: payload, scopes: null } })
        } catch (err) {
          // jose's reasons name the claim or the signature, never the token or the key.
          return refuse(h, `the bearer token is refused (${err.message})`)
        }
      },
    }),
  }
}
