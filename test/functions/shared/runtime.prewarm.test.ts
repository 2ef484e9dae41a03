// The functions' init (shared/runtime.ts) with TENANT_POOLS_PREWARM: off by default, no connection at
// init; on, the secret is read and one connection opened, which the first query reuses.
import { CreateSecretCommand } from '@aws-sdk/client-secrets-manager'
import { migrateMaster } from '../../../functions/admin/provision'
import {
  countBackends,
  databaseUrl,
  endTestPools,
  eventually,
  lastStatements,
  testPools,
  uniquePrefix,
  uniqueTenant,
} from '../../support/db'
import { localSecrets, rdsSecret, sdkEnvFor } from '../../support/secrets'

type Lib = typeof import('../../../lib')
type Runtime = typeof import('../../../functions/shared/runtime')

const saved = { ...process.env }
const target = new URL(databaseUrl())
const secretId = `pw/${uniqueTenant('rt')}/traffic`
let sm: Awaited<ReturnType<typeof localSecrets>>
let loaded: { lib: Lib; runtime: Runtime } | undefined

// A fresh init: the modules loaded anew, in the environment given.
async function init(env: Record<string, string>): Promise<{ lib: Lib; runtime: Runtime }> {
  jest.resetModules()
  process.env = { ...saved, POWERTOOLS_LOG_LEVEL: 'SILENT', POWERTOOLS_METRICS_DISABLED: 'true', ...env }
  const lib = await import('../../../lib')
  loaded = { lib, runtime: undefined as unknown as Runtime }
  loaded.runtime = await import('../../../functions/shared/runtime')
  return loaded
}

beforeAll(async () => {
  // The catalog, which the prewarm's warm-up reads.
  const { pools } = testPools()
  await migrateMaster(pools)
  await endTestPools()
  sm = await localSecrets()
  await sm.client.send(
    new CreateSecretCommand({
      Name: secretId,
      SecretString: rdsSecret(decodeURIComponent(target.username), decodeURIComponent(target.password)),
    }),
  )
})

afterEach(async () => {
  await loaded?.lib.resetTenantPools()
  loaded = undefined
  process.env = { ...saved }
})

afterAll(async () => {
  await sm.server.close()
})

const secretsEnv = () => ({
  TENANT_POOLS_SECRET_ID: secretId,
  ...sdkEnvFor(sm.server.url),
})

describe('Behaviour: prewarm at init (TENANT_POOLS_PREWARM)', () => {
  it('off by default: init opens no connection', async () => {
    const prefix = uniquePrefix()
    const { runtime } = await init({ ...secretsEnv(), TENANT_POOLS_APP_NAME_PREFIX: prefix })

    expect(runtime.prewarming).toBeUndefined()
    expect(runtime.pools().counters().connectionsOpened).toBe(0)
    expect(await countBackends(prefix)).toBe(0)
  })

  it('on: init reads the secret and opens one connection, idle; the first query reuses it', async () => {
    // Act: init
    const prefix = uniquePrefix()
    const { runtime } = await init({
      ...secretsEnv(),
      TENANT_POOLS_APP_NAME_PREFIX: prefix,
      TENANT_POOLS_PREWARM: 'true',
    })

    // Assess: it never fails; a slow first load of the SDK may leave its connection still on its way.
    // Its warm-up, the catalog's look-up for no tenant, is the connection's one checkout.
    const outcome = await runtime.prewarming
    expect(['opened', 'timedOut']).toContain(outcome?.outcome)
    expect(outcome?.warmUpError).toBeUndefined()
    const pools = runtime.pools()
    expect(await eventually(() => pools.stats().totals.idle === 1 && pools.counters().checkouts === 1)).toBe(
      true,
    )
    expect(pools.counters()).toMatchObject({ connectionsOpened: 1, checkouts: 1 })
    expect(await countBackends(prefix)).toBe(1)
    expect(await lastStatements(prefix)).toEqual([
      'SELECT status, cluster, moving_to FROM tenants WHERE id = $1',
    ])

    // Act: the first request
    pools.invocationStarted()
    const { rows } = await pools.master.query<{ ok: number }>('SELECT 1 AS ok')

    // Assess
    expect(rows).toEqual([{ ok: 1 }])
    expect(pools.counters()).toMatchObject({ connectionsOpened: 1, connectionsReused: 2, checkouts: 2 })
  })

  it('a bound above 1000 ms fails init, naming the variable', async () => {
    await expect(
      init({ TENANT_POOLS_PREWARM: 'true', TENANT_POOLS_PREWARM_TIMEOUT_MS: '5000' }),
    ).rejects.toThrow(/TENANT_POOLS_PREWARM_TIMEOUT_MS/)
  })

  it('a malformed TENANT_POOLS_PREWARM fails init, naming the variable', async () => {
    await expect(init({ TENANT_POOLS_PREWARM: 'yes' })).rejects.toThrow(
      /TENANT_POOLS_PREWARM must be true or false/,
    )
  })
})
