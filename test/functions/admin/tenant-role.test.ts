// A tenant's own role, provisioned through the real SDK against the local Secrets Manager, on a
// server that logs every DDL statement: the password never reaches the server (a SCRAM verifier
// does), the role logs in with the secret's password, and its sessions get the registry's schema
// and timeouts from the role itself (what proxy-safe mode relies on).
import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager'
import { Client } from 'pg'
import { ensureTenantRole } from '../../../functions/admin/tenant-role'
import { TenantPools } from '../../../lib'
import { resetSecretsManagerClient } from '../../../lib/aws/secrets-manager-client'
import { type ControlledServer, controlledServer } from '../../support/controlled-pg'
import { localSecrets, sdkEnvFor } from '../../support/secrets'

let server: ControlledServer
let secrets: Awaited<ReturnType<typeof localSecrets>>
const saved = { ...process.env }

beforeAll(async () => {
  server = await controlledServer(['log_statement=ddl'])
  secrets = await localSecrets()
  Object.assign(process.env, {
    ...sdkEnvFor(secrets.server.url),
    TENANT_POOLS_TENANT_SECRET_PATTERN: 'test/tenants/{tenantId}',
    TENANT_POOLS_STATEMENT_TIMEOUT_MS: '4321',
    TENANT_POOLS_IDLE_SESSION_TIMEOUT_MS: '54321',
  })
  resetSecretsManagerClient()
}, 60_000)

afterAll(async () => {
  process.env = saved
  resetSecretsManagerClient()
  await secrets.server.close()
  await server.quit()
})

describe('Behaviour: a tenant role of its own', () => {
  it('sends a SCRAM verifier, never the password, and puts schema and timeouts on the role', async () => {
    const pools = new TenantPools({
      connectionString: server.url,
      logger: { debug() {}, info() {}, warn() {}, error() {} },
    })
    try {
      await pools.master.query('CREATE SCHEMA tenant_rolly')

      const { role, secretId } = await ensureTenantRole(pools, 'rolly')
      // Again: re-aligned, still no password in the log
      await ensureTenantRole(pools, 'rolly')

      const secret = await secrets.client.send(new GetSecretValueCommand({ SecretId: secretId }))
      const { password } = JSON.parse(secret.SecretString ?? '{}') as { password: string }
      expect(password.length).toBeGreaterThan(20)
      const ddl = server.lines.filter((l) => l.includes('ROLE'))
      expect(ddl.filter((l) => l.includes('SCRAM-SHA-256$4096:')).length).toBeGreaterThanOrEqual(2)
      expect(server.lines.filter((l) => l.includes(password))).toEqual([])

      const url = new URL(server.url)
      const tenant = new Client({
        host: url.hostname,
        port: Number(url.port),
        database: url.pathname.slice(1),
        user: role,
        password,
      })
      await tenant.connect()
      const { rows } = await tenant.query(
        `SELECT current_user AS "user", current_schema() AS schema,
                current_setting('statement_timeout') AS statement, current_setting('idle_session_timeout') AS idle`,
      )
      await tenant.end()
      expect(rows).toEqual([
        { user: 'tenant_rolly', schema: 'tenant_rolly', statement: '4321ms', idle: '54321ms' },
      ])
    } finally {
      await pools.end()
    }
  }, 60_000)
})
