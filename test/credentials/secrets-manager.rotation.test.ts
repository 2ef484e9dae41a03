import { inspect } from 'node:util'
import {
  CreateSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  type SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager'
import { secretsManagerCredentials, type TenantPools } from '../../lib'
import { createTenants, endTestPools, sleep, testPools, uniqueTenant, withAdmin } from '../support/db'
import { figure } from '../support/figures'
import { localSecrets, rdsSecret } from '../support/secrets'

/** 20 callers querying without pause until `durationMs` is over; every outcome is kept. */
async function load(pools: TenantPools, tenant: string, durationMs: number) {
  const deadline = Date.now() + durationMs
  const users = new Map<string, number>()
  const failures: unknown[] = []
  let calls = 0
  await Promise.all(
    Array.from({ length: 20 }, async () => {
      while (Date.now() < deadline) {
        calls++
        try {
          const { rows } = await pools.query<{ who: string }>(
            tenant,
            'SELECT current_user AS who FROM whoami',
          )
          const who = rows[0]?.who as string
          users.set(who, (users.get(who) ?? 0) + 1)
        } catch (err) {
          failures.push(err)
        }
      }
    }),
  )
  return { users, failures, calls }
}

async function createRole(role: string, password: string, tenant: string) {
  await withAdmin(async (admin) => {
    await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password}'`)
    await admin.query(`GRANT USAGE ON SCHEMA tenant_${tenant} TO ${role}`)
    await admin.query(`GRANT SELECT ON tenant_${tenant}.whoami TO ${role}`)
  })
}

describe('Behaviour: credentials rotation under load', () => {
  let sm: Awaited<ReturnType<typeof localSecrets>>
  let client: SecretsManagerClient
  beforeEach(async () => {
    sm = await localSecrets()
    client = sm.client
  })
  afterEach(async () => {
    await endTestPools()
    await sm.server.close()
  })

  it('single user: the password changes under a live pool (AWSPENDING, ALTER ROLE, AWSCURRENT); no call fails', async () => {
    // Prepare
    const tenant = uniqueTenant('rot')
    const role = `r_${tenant}`
    await createTenants([tenant])
    await createRole(role, 'pw-One-1', tenant)
    await client.send(
      new CreateSecretCommand({ Name: `app/${tenant}`, SecretString: rdsSecret(role, 'pw-One-1') }),
    )
    // Short lifetimes keep new connections coming, so the change is met by real logins.
    const { pools, logs } = testPools({
      credentials: secretsManagerCredentials({ secretId: `app/${tenant}`, client }),
      maxLifetimeMs: 200,
      connectTimeoutMs: 10_000,
    })

    // Act: rotate the way a single-user rotation lambda does, three seconds into ten of load
    const running = load(pools, tenant, 10_000)
    await sleep(3_000)
    const current = await client.send(new GetSecretValueCommand({ SecretId: `app/${tenant}` }))
    const pending = await client.send(
      new PutSecretValueCommand({
        SecretId: `app/${tenant}`,
        SecretString: rdsSecret(role, 'pw-Two-2'),
        VersionStages: ['AWSPENDING'],
      }),
    )
    await withAdmin((admin) => admin.query(`ALTER ROLE ${role} PASSWORD 'pw-Two-2'`))
    await sleep(1_000)
    await client.send(
      new UpdateSecretVersionStageCommand({
        SecretId: `app/${tenant}`,
        VersionStage: 'AWSCURRENT',
        MoveToVersionId: pending.VersionId,
        RemoveFromVersionId: current.VersionId,
      }),
    )
    const { failures, calls } = await running

    // Assess
    const { counters } = pools.stats()
    figure(
      `single-user rotation: ${calls} calls, ${failures.length} failed, ${counters.credentialRefreshes} retried after 28P01`,
    )
    expect(failures).toEqual([])
    expect(counters.credentialRefreshes).toBeGreaterThan(0)
    expect(counters.poolsCreated).toBe(1)
    // Nothing captured holds either password.
    const captured = [
      inspect(logs, { depth: 10 }),
      JSON.stringify(pools.stats()),
      inspect(pools, { depth: 5 }),
    ].join()
    expect(captured).not.toMatch(/pw-One-1|pw-Two-2/)
  }, 60_000)

  it('fallback to the master secret: two master rotations under load, tenants without a secret of their own; no call fails', async () => {
    // Prepare: tenants whose own secret (app/tenants/<id>) does not exist fall back to the master's
    const [t1, t2] = [uniqueTenant('fb'), uniqueTenant('fb')]
    const role = `m_${t1}`
    const master = `master/${t1}`
    await createTenants([t1, t2])
    await createRole(role, 'pw-M-1', t1)
    await withAdmin((admin) =>
      admin.query(
        `GRANT USAGE ON SCHEMA tenant_${t2} TO ${role}; GRANT SELECT ON tenant_${t2}.whoami TO ${role}`,
      ),
    )
    await client.send(new CreateSecretCommand({ Name: master, SecretString: rdsSecret(role, 'pw-M-1') }))
    const { pools } = testPools({
      credentials: secretsManagerCredentials({
        secretId: master,
        secretIdFor: (id) => `app/tenants/${id}`,
        fallbackToSecretId: true,
        client,
      }),
      maxLifetimeMs: 200,
      connectTimeoutMs: 10_000,
    })
    // A single-user rotation: AWSPENDING set, the role changed, a window of `windowMs` in which only
    // AWSPENDING logs in, then AWSCURRENT moved
    const rotate = async (password: string, windowMs: number) => {
      const current = await client.send(new GetSecretValueCommand({ SecretId: master }))
      const pending = await client.send(
        new PutSecretValueCommand({
          SecretId: master,
          SecretString: rdsSecret(role, password),
          VersionStages: ['AWSPENDING'],
        }),
      )
      await withAdmin((admin) => admin.query(`ALTER ROLE ${role} PASSWORD '${password}'`))
      await sleep(windowMs)
      await client.send(
        new UpdateSecretVersionStageCommand({
          SecretId: master,
          VersionStage: 'AWSCURRENT',
          MoveToVersionId: pending.VersionId,
          RemoveFromVersionId: current.VersionId,
        }),
      )
    }

    // Act: two rotations of the master secret under load, the first with a 2 s window
    const running = Promise.all([load(pools, t1, 9_000), load(pools, t2, 9_000)])
    await sleep(1_500)
    await rotate('pw-M-2', 2_000)
    await sleep(2_000)
    await rotate('pw-M-3', 500)
    const results = await running

    // Assess
    const failures = results.flatMap((r) => r.failures)
    const calls = results.reduce((n, r) => n + r.calls, 0)
    const { counters } = pools.stats()
    figure(
      `master rotation with fallback: ${calls} calls, ${failures.length} failed, ${counters.credentialRefreshes} retried after 28P01`,
    )
    expect(failures).toEqual([])
    expect(counters.credentialRefreshes).toBeGreaterThan(0)
    expect(results.every((r) => r.users.get(role) === r.calls)).toBe(true)
  }, 60_000)

  it('alternating users: the secret flips to a second role mid-load; no call fails and new connections use it', async () => {
    // Prepare
    const tenant = uniqueTenant('alt')
    const [a, b] = [`a_${tenant}`, `b_${tenant}`]
    await createTenants([tenant])
    await createRole(a, 'pw-A-1', tenant)
    await createRole(b, 'pw-B-1', tenant)
    await client.send(
      new CreateSecretCommand({ Name: `alt/${tenant}`, SecretString: rdsSecret(a, 'pw-A-1') }),
    )
    const { pools } = testPools({
      credentials: secretsManagerCredentials({ secretId: `alt/${tenant}`, client, maxAgeMs: 500 }),
      maxLifetimeMs: 200,
      connectTimeoutMs: 10_000,
    })

    // Act
    const running = load(pools, tenant, 10_000)
    await sleep(3_000)
    await client.send(
      new PutSecretValueCommand({ SecretId: `alt/${tenant}`, SecretString: rdsSecret(b, 'pw-B-1') }),
    )
    const { failures, users, calls } = await running

    // Assess
    figure(
      `alternating users: ${calls} calls, ${failures.length} failed, by role: ${JSON.stringify([...users])}`,
    )
    expect(failures).toEqual([])
    expect(users.get(a)).toBeGreaterThan(0)
    expect(users.get(b)).toBeGreaterThan(0)
    expect(pools.stats().counters.poolsCreated).toBe(1)
  }, 60_000)

  it('per-tenant secrets: each tenant logs in as its own role', async () => {
    const [t1, t2] = [uniqueTenant('own'), uniqueTenant('own')]
    await createTenants([t1, t2])
    await createRole(`r_${t1}`, 'pw-T1', t1)
    await createRole(`r_${t2}`, 'pw-T2', t2)
    for (const [t, pw] of [
      [t1, 'pw-T1'],
      [t2, 'pw-T2'],
    ] as const) {
      await client.send(
        new CreateSecretCommand({ Name: `app/tenants/${t}`, SecretString: rdsSecret(`r_${t}`, pw) }),
      )
    }
    const { pools } = testPools({
      credentials: secretsManagerCredentials({ secretIdFor: (id) => `app/tenants/${id}`, client }),
    })

    const who = await Promise.all(
      [t1, t2].map((t) => pools.query<{ who: string }>(t, 'SELECT current_user AS who')),
    )

    expect(who.map((r) => r.rows[0]?.who)).toEqual([`r_${t1}`, `r_${t2}`])
    // A tenant role cannot read another tenant's schema.
    await expect(pools.query(t1, `SELECT * FROM tenant_${t2}.whoami`)).rejects.toMatchObject({
      code: '42501',
    })
  })

  it('a refused secret fails the caller with 28P01 after one refresh, and leaks no password', async () => {
    const tenant = uniqueTenant('bad')
    await createTenants([tenant])
    await createRole(`r_${tenant}`, 'pw-Right-9', tenant)
    await client.send(
      new CreateSecretCommand({
        Name: `bad/${tenant}`,
        SecretString: rdsSecret(`r_${tenant}`, 'pw-Wrong-9'),
      }),
    )
    const { pools, logs } = testPools({
      credentials: secretsManagerCredentials({ secretId: `bad/${tenant}`, client }),
    })

    const err = await pools.query(tenant, 'SELECT 1').catch((e: unknown) => e)

    expect(err).toMatchObject({ code: 'CONNECT_FAILED', cause: { code: '28P01' } })
    expect(pools.stats().counters.credentialRefreshes).toBe(1)
    const captured = [
      inspect(err, { depth: 10 }),
      (err as Error).stack,
      inspect(logs, { depth: 10 }),
      JSON.stringify(pools.stats()),
    ]
    expect(captured.join()).not.toMatch(/pw-Wrong-9|pw-Right-9/)
  })
})
