// DELETE /admin/tenants/{id} cut short part way is finished by its retry, and a tenant deleted then
// created again gets its secret back. Through the real SDK against the local Secrets Manager, which
// schedules a deleted secret for deletion as AWS does (it refuses its value, and a second deletion,
// with InvalidRequestException, until it is restored). The deletion is cut short by a grant made by
// hand, which DROP ROLE refuses (2BP01) after the tenant is marked deleted and its secret scheduled.
import {
  CreateSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
} from '@aws-sdk/client-secrets-manager'
import type { APIGatewayProxyEventV2 } from 'aws-lambda'
import { resetSecretsManagerClient } from '../../../lib/aws/secrets-manager-client'
import { databaseUrl, onServer, uniquePrefix, uniqueTenant, withAdmin } from '../../support/db'
import type { Handler } from '../../support/handler-world'
import { localSecrets, sdkEnvFor } from '../../support/secrets'

interface Answer {
  status: number
  body: { roleDropped?: string | null; role?: string; error?: { code: string } }
}

const context = { awsRequestId: 'r', functionName: 'admin', getRemainingTimeInMillis: () => 30_000 }

describe('DELETE /admin/tenants/{id}, retried', () => {
  const saved = { ...process.env }
  const database = `${uniquePrefix()}_admin_remove`
  let secrets: Awaited<ReturnType<typeof localSecrets>>
  let handlers: Record<'create' | 'remove', Handler>
  let reset: () => Promise<void>
  let url: string

  const call = async (name: 'create' | 'remove', id: string, body?: object): Promise<Answer> => {
    const event = {
      headers: { 'x-admin-key': 'test-admin-key', 'content-type': 'application/json' },
      pathParameters: { id },
      body: body && JSON.stringify(body),
      requestContext: { http: { method: name === 'create' ? 'POST' : 'DELETE', path: '/admin/tenants' } },
    } as unknown as APIGatewayProxyEventV2
    const res = await handlers[name](event, context)
    return { status: res.statusCode as number, body: JSON.parse((res.body as string) || '{}') }
  }
  const roleExists = async (role: string) =>
    (await withAdmin((c) => c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role]))).rowCount === 1
  const secretState = async (secretId: string) => {
    const described = await secrets.client
      .send(new DescribeSecretCommand({ SecretId: secretId }))
      .catch((err: { name: string }) => err.name)
    return typeof described === 'string' ? described : described.DeletedDate ? 'scheduled' : 'live'
  }

  beforeAll(async () => {
    secrets = await localSecrets()
    await withAdmin((admin) => admin.query(`CREATE DATABASE ${database}`))
    const at = new URL(databaseUrl())
    at.pathname = `/${database}`
    url = at.toString()
    // The owner's login, as the functions read it: from its secret.
    await secrets.client.send(
      new CreateSecretCommand({
        Name: 'test/master',
        SecretString: JSON.stringify({
          username: decodeURIComponent(at.username),
          password: decodeURIComponent(at.password),
        }),
      }),
    )
    Object.assign(process.env, {
      TENANT_POOLS_SECRET_ID: 'test/master',
      ...sdkEnvFor(secrets.server.url),
      DATABASE_URL: url,
      ADMIN_API_KEY: 'test-admin-key',
      TENANT_POOLS_TENANT_SECRET_PATTERN: 'test/tenants/{tenantId}',
      POWERTOOLS_LOG_LEVEL: 'SILENT',
      POWERTOOLS_METRICS_DISABLED: 'true',
    })
    resetSecretsManagerClient()
    jest.resetModules()
    const lib = await import('../../../lib')
    const { migrateMaster } = await import('../../../functions/admin/provision')
    handlers = (await import('../../../functions/admin/handlers')) as unknown as typeof handlers
    reset = lib.resetTenantPools
    await migrateMaster(lib.getTenantPools())
  }, 60_000)

  afterAll(async () => {
    await reset?.()
    process.env = saved
    resetSecretsManagerClient()
    await withAdmin((admin) => admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`))
    await secrets.server.close()
  })

  it('a deletion cut short after the tenant was marked deleted: its retry drops the role, then 404', async () => {
    // Prepare: a tenant with its own role, and a grant DROP ROLE refuses
    const id = uniqueTenant('rm')
    const role = `tenant_${id}`
    const secretId = `test/tenants/${id}`
    expect((await call('create', id, { id, role: true })).status).toBe(201)
    await onServer(url, (c) => c.query(`GRANT CONNECT ON DATABASE ${database} TO ${role}`))

    // Act: the first deletion fails at DROP ROLE
    const first = await call('remove', id)

    // Assess: a server error; the tenant marked deleted, its secret scheduled, its role still there
    expect(first.status).toBeGreaterThanOrEqual(500)
    expect(await roleExists(role)).toBe(true)
    expect(await secretState(secretId)).toBe('scheduled')

    // Act: the grant taken back, the deletion retried
    await onServer(url, (c) => c.query(`REVOKE CONNECT ON DATABASE ${database} FROM ${role}`))
    const retried = await call('remove', id)

    // Assess: finished; a third is a 404
    expect(retried).toEqual({ status: 200, body: expect.objectContaining({ roleDropped: role }) })
    expect(await roleExists(role)).toBe(false)
    expect(await secretState(secretId)).toBe('scheduled')
    expect(await call('remove', id)).toMatchObject({
      status: 404,
      body: { error: { code: 'TENANT_NOT_FOUND' } },
    })
  })

  it('a tenant deleted and created again gets its secret back, and its role logs in with it', async () => {
    // Prepare
    const id = uniqueTenant('rm')
    const secretId = `test/tenants/${id}`
    expect((await call('create', id, { id, role: true })).status).toBe(201)
    expect((await call('remove', id)).status).toBe(200)
    expect(await secretState(secretId)).toBe('scheduled')

    // Act
    const again = await call('create', id, { id, role: true })

    // Assess: the secret restored, and its password the role's
    expect(again.status).toBe(200)
    expect(await secretState(secretId)).toBe('live')
    const secret = await secrets.client.send(new GetSecretValueCommand({ SecretId: secretId }))
    const { password } = JSON.parse(secret.SecretString ?? '{}') as { password: string }
    const login = new URL(url)
    login.username = `tenant_${id}`
    login.password = password
    const { rows } = await onServer(login.toString(), (c) => c.query('SELECT current_user AS me'))
    expect(rows).toEqual([{ me: `tenant_${id}` }])
  })

  it('a tenant that never existed, or one without a role of its own deleted before: 404', async () => {
    const id = uniqueTenant('rm')
    expect(await call('remove', id)).toMatchObject({
      status: 404,
      body: { error: { code: 'TENANT_NOT_FOUND' } },
    })
    expect((await call('create', id, { id })).status).toBe(201)
    expect((await call('remove', id)).status).toBe(200)
    expect(await call('remove', id)).toMatchObject({
      status: 404,
      body: { error: { code: 'TENANT_NOT_FOUND' } },
    })
  })
})
