import { PoolsEndedError } from '../../lib'
import {
  countBackends,
  createTenants,
  endTestPools,
  holdConnection,
  sleep,
  testPools,
  uniqueTenant,
} from '../support/db'

describe('Behaviour: end()', () => {
  afterEach(endTestPools)

  it('closes every connection, and later calls fail with a clear error', async () => {
    // Prepare
    const [a, b] = [uniqueTenant('a'), uniqueTenant('b')]
    await createTenants([a, b])
    const { pools, prefix } = testPools()
    // Held at once, so that three connections are open whatever the machine's pace (three queries
    // at once may finish before the last is checked out, and share a connection).
    const held = await Promise.all([holdConnection(pools, a), holdConnection(pools, b)])
    await pools.master.query('SELECT 1')
    for (const h of held) h.release()
    await Promise.all(held.map((h) => h.done))
    expect(await countBackends(prefix)).toBe(3)

    // Act
    await pools.end()

    // Assess
    expect(await countBackends(prefix)).toBe(0)
    expect(pools.stats().totals).toMatchObject({ pools: 0, total: 0 })
    await expect(pools.query(a, 'SELECT 1')).rejects.toBeInstanceOf(PoolsEndedError)
    await expect(pools.withClient(a, async () => 1)).rejects.toThrow(/has been ended/)
    await expect(pools.master.query('SELECT 1')).rejects.toMatchObject({ code: 'POOLS_ENDED' })
    await expect(pools.end()).resolves.toBeUndefined()
  })

  it('lets a call in flight finish, then closes its connection', async () => {
    const tenant = uniqueTenant()
    await createTenants([tenant])
    const { pools, prefix } = testPools()
    const inFlight = await holdConnection(
      pools,
      tenant,
      async (client) => (await client.query<{ ok: number }>('SELECT 1 AS ok')).rows[0]?.ok,
    )

    const ended = pools.end()
    inFlight.release()

    await expect(inFlight.done).resolves.toBe(1)
    await ended
    expect(await countBackends(prefix)).toBe(0)
  })
})

// Found in review, with the event sequence that used to break it.
describe('Behaviour: edge cases of the pool', () => {
  afterEach(endTestPools)

  it('end() also waits for pools evicted earlier whose connections are still in use', async () => {
    const tenant = uniqueTenant()
    await createTenants([tenant])
    const { pools, prefix } = testPools()
    const held = await holdConnection(pools, tenant, (client) => client.query('SELECT 1'))

    const evicted = pools.evict(tenant)
    let ended = false
    const ending = pools.end().then(() => {
      ended = true
    })
    await sleep(100)
    expect(ended).toBe(false)
    held.release()

    await Promise.all([held.done, evicted, ending])
    expect(await countBackends(prefix)).toBe(0)
  })
})
