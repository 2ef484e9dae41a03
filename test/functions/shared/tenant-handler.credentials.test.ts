// The tenant API's logins, as deployed: tenant traffic's secret for tenants without a role of their
// own, each tenant's own secret otherwise. A tenant that has a role but whose secret is missing is
// refused with 503 CREDENTIALS_UNAVAILABLE: it never borrows the shared login.
import { CreateSecretCommand } from '@aws-sdk/client-secrets-manager'
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda'
import { getTenantPools, resetTenantPools, TenantPools } from '../../../lib'
import { databaseUrl, uniqueTenant, withAdmin } from '../../support/db'
import { memoryLog } from '../../support/memory-log'
import { localSecrets, rdsSecret, sdkEnvFor } from '../../support/secrets'

type Handler = (event: unknown, context: unknown) => Promise<APIGatewayProxyStructuredResultV2>

const saved = { ...process.env }
const run = uniqueTenant('cf')
const traffic = `trf_${run}`
const masterSchema = `m_${run}`
const prefix = `cf${run.slice(-8)}`
const plain = uniqueTenant('plain')
const missing = uniqueTenant('miss')
const withSecret = uniqueTenant('own')
let sm: Awaited<ReturnType<typeof localSecrets>>
let list: Handler

const call = (tenant: string) =>
  list(
    { headers: { 'x-tenant-id': tenant }, requestContext: {} },
    { awsRequestId: 'cf', functionName: 'list', getRemainingTimeInMillis: () => 30_000 },
  )

// Who each of the tenant's sessions logged in as.
const usersOf = (tenant: string) =>
  withAdmin(async (admin) => {
    const { rows } = await admin.query<{ usename: string }>(
      // Its scopes: `prefix:tenant`, and `prefix:tenant/read-only` for the list's reads.
      'SELECT DISTINCT usename FROM pg_stat_activity WHERE application_name LIKE $1',
      [`${prefix}:${tenant}%`],
    )
    return rows.map((r) => r.usename)
  })

beforeAll(async () => {
  sm = await localSecrets()
  await withAdmin(async (admin) => {
    await admin.query(`CREATE ROLE ${traffic} LOGIN PASSWORD 'pw-Traffic-1'`)
    await admin.query(`CREATE SCHEMA ${masterSchema}`)
  })
  await sm.client.send(
    new CreateSecretCommand({ Name: `cf/${run}/traffic`, SecretString: rdsSecret(traffic, 'pw-Traffic-1') }),
  )
  Object.assign(process.env, {
    TENANT_POOLS_SECRET_ID: `cf/${run}/traffic`,
    TENANT_POOLS_TENANT_SECRET_PATTERN: `cf/${run}/tenants/{tenantId}`,
    TENANT_POOLS_TENANT_SECRET_FALLBACK: 'true',
    TENANT_POOLS_TRAFFIC_ROLE: traffic,
    TENANT_POOLS_MASTER_SCHEMA: masterSchema,
    TENANT_POOLS_TRUST_TENANT_HEADER: 'true',
    TENANT_POOLS_APP_NAME_PREFIX: prefix,
    ...sdkEnvFor(sm.server.url),
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    POWERTOOLS_METRICS_DISABLED: 'true',
  })
  // Provisioned as the owner (the test server's superuser here), granting tenant traffic its rights.
  const { migrateMaster, provisionTenant } = await import('../../../functions/admin/provision')
  const owner = new TenantPools({ connectionString: databaseUrl(), masterSchema, logger: memoryLog().log })
  try {
    await migrateMaster(owner)
    for (const t of [plain, missing, withSecret]) await provisionTenant(owner, t)
  } finally {
    await owner.end()
  }
  // Two tenants with roles of their own; only one has its secret.
  await withAdmin(async (admin) => {
    for (const t of [missing, withSecret]) {
      await admin.query(`CREATE ROLE tenant_${t} LOGIN PASSWORD 'pw-Own-1'`)
      await admin.query(`GRANT USAGE ON SCHEMA tenant_${t} TO tenant_${t}`)
      await admin.query(
        `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA tenant_${t} TO tenant_${t}`,
      )
    }
  })
  await sm.client.send(
    new CreateSecretCommand({
      Name: `cf/${run}/tenants/${withSecret}`,
      SecretString: rdsSecret(`tenant_${withSecret}`, 'pw-Own-1'),
    }),
  )
  list = ((await import('../../../functions/http/orders/handlers')) as unknown as { list: Handler }).list
}, 60_000)

afterAll(async () => {
  await resetTenantPools()
  await sm.server.close()
  await withAdmin(async (admin) => {
    for (const t of [missing, withSecret])
      await admin.query(`DROP OWNED BY tenant_${t}; DROP ROLE tenant_${t}`)
  })
  process.env = saved
})

describe('Behaviour: the tenant API’s logins', () => {
  it('logs a tenant without a role of its own in as tenant traffic', async () => {
    expect((await call(plain)).statusCode).toBe(200)
    expect(await usersOf(plain)).toEqual([traffic])
  })

  it('logs a tenant with a role and a secret in as that role', async () => {
    expect((await call(withSecret)).statusCode).toBe(200)
    expect(await usersOf(withSecret)).toEqual([`tenant_${withSecret}`])
  })

  it('refuses a tenant with a role but no secret: 503 CREDENTIALS_UNAVAILABLE, no session, every time', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await call(missing)
      expect({ status: res.statusCode, code: JSON.parse(String(res.body)).error.code }).toEqual({
        status: 503,
        code: 'CREDENTIALS_UNAVAILABLE',
      })
      expect(res.headers).toMatchObject({ 'retry-after': '1' })
      expect(String(res.body)).not.toContain('pw-')
    }
    expect(await usersOf(missing)).toEqual([])
    // The other tenants are served as before.
    expect((await call(plain)).statusCode).toBe(200)
    expect(
      getTenantPools()
        .stats()
        .pools.find((p) => p.key === missing)?.total ?? 0,
    ).toBe(0)
  })
})
