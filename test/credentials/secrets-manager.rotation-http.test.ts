// Rotation under load through the HTTP handlers: the functions' own registry (built from the
// environment, credentials from the local Secrets Manager through the real SDK), 20 callers for 8 s,
// the password rotated single-user style mid-load. Every call answers 200.
import {
  CreateSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager'
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda'
import { getTenantPools, resetTenantPools } from '../../lib'
import { databaseUrl, sleep, uniqueTenant, withAdmin } from '../support/db'
import { figure } from '../support/figures'
import { localSecrets, rdsSecret, sdkEnvFor } from '../support/secrets'

type Handler = (event: unknown, context: unknown) => Promise<APIGatewayProxyStructuredResultV2>

const saved = { ...process.env }
const tenant = uniqueTenant('roth')
const role = `app_${tenant}`
const secretId = `rot-http/${tenant}`
let sm: Awaited<ReturnType<typeof localSecrets>>
let list: Handler

beforeAll(async () => {
  sm = await localSecrets()
  // The functions' registry logs in as `role`, whose password lives only in the secret.
  await withAdmin(async (admin) => {
    await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD 'pw-Before-1' CREATEROLE`)
    await admin.query(`GRANT CREATE ON DATABASE ${new URL(databaseUrl()).pathname.slice(1)} TO ${role}`)
  })
  await sm.client.send(
    new CreateSecretCommand({ Name: secretId, SecretString: rdsSecret(role, 'pw-Before-1') }),
  )
  // DATABASE_URL keeps the test server's superuser in it: the provider's credentials win over it.
  Object.assign(process.env, {
    TENANT_POOLS_SECRET_ID: secretId,
    TENANT_POOLS_MASTER_SCHEMA: `m_${tenant}`,
    TENANT_POOLS_MAX_LIFETIME_MS: '200',
    TENANT_POOLS_TRUST_TENANT_HEADER: 'true',
    TENANT_POOLS_APP_NAME_PREFIX: 'roth',
    ...sdkEnvFor(sm.server.url),
    POWERTOOLS_LOG_LEVEL: 'SILENT',
    POWERTOOLS_METRICS_DISABLED: 'true',
  })
  await withAdmin((admin) => admin.query(`CREATE SCHEMA m_${tenant} AUTHORIZATION ${role}`))
  const { migrateMaster, provisionTenant } = await import('../../functions/admin/provision')
  list = ((await import('../../functions/http/orders/handlers')) as unknown as { list: Handler }).list
  await migrateMaster(getTenantPools())
  await provisionTenant(getTenantPools(), tenant)
}, 60_000)

afterAll(async () => {
  await resetTenantPools()
  await sm.server.close()
  process.env = saved
})

it('answers every call with 200 while the password rotates under load', async () => {
  // Prepare
  const event = { headers: { 'x-tenant-id': tenant }, requestContext: {} }
  // A context of its own per invocation, as Lambda gives: the middleware puts the tenant's db on it.
  const context = () => ({
    awsRequestId: 'rot',
    functionName: 'list',
    getRemainingTimeInMillis: () => 30_000,
  })
  const statuses = new Map<number, number>()
  const deadline = Date.now() + 8_000
  const load = Promise.all(
    Array.from({ length: 20 }, async () => {
      while (Date.now() < deadline) {
        const status = (await list(event, context())).statusCode ?? 0
        statuses.set(status, (statuses.get(status) ?? 0) + 1)
      }
    }),
  )

  // Act: single-user rotation, as a rotation lambda does it
  await sleep(2_000)
  const current = await sm.client.send(new GetSecretValueCommand({ SecretId: secretId }))
  const pending = await sm.client.send(
    new PutSecretValueCommand({
      SecretId: secretId,
      SecretString: rdsSecret(role, 'pw-After-2'),
      VersionStages: ['AWSPENDING'],
    }),
  )
  await withAdmin((admin) => admin.query(`ALTER ROLE ${role} PASSWORD 'pw-After-2'`))
  await sleep(1_000)
  await sm.client.send(
    new UpdateSecretVersionStageCommand({
      SecretId: secretId,
      VersionStage: 'AWSCURRENT',
      MoveToVersionId: pending.VersionId,
      RemoveFromVersionId: current.VersionId,
    }),
  )
  await load

  // Assess
  const { counters } = getTenantPools().stats()
  figure(
    `rotation over HTTP: ${JSON.stringify([...statuses])}, ${counters.credentialRefreshes} retried after 28P01`,
  )
  expect([...statuses.keys()]).toEqual([200])
  expect(statuses.get(200)).toBeGreaterThan(500)
  expect(counters.credentialRefreshes).toBeGreaterThan(0)
}, 60_000)
