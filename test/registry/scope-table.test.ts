// How scopes leave the registry (scope-table.ts): evict takes exactly the scopes asked for; LRU and
// TTL retire a scope but keep its idle connection for the next scope to rebind; a scope is never
// retired while its login is being looked up; and a lookup that ends after end() opens nothing.
import { PoolsEndedError } from '../../lib'
import { createTenants, endTestPools, eventually, signal, testPools, uniqueTenant } from '../support/db'

afterEach(endTestPools)

const keys = (pools: { stats(): { pools: { key: string }[] } }) =>
  pools
    .stats()
    .pools.map((p) => p.key)
    .sort()

describe('Registry: scope lifecycle', () => {
  it('evicts every scope of the tenant, or only its app, and no other tenant’s', async () => {
    const [a, b] = [uniqueTenant('ea'), uniqueTenant('eb')]
    await createTenants([a, b])
    const { pools } = testPools()
    for (const [id, app] of [
      [a, undefined],
      [a, 'web'],
      [a, 'mobile'],
      [b, undefined],
      [b, 'web'],
    ] as const) {
      await pools.query(id, 'SELECT 1', [], { app })
    }
    expect(await pools.evict(a, { app: 'web' })).toBe(1)
    expect(keys(pools)).toEqual([a, `${a}:mobile`, b, `${b}:web`].sort())
    expect(await pools.evict(a)).toBe(2)
    expect(keys(pools)).toEqual([b, `${b}:web`].sort())
  })

  it.each([
    ['the least recently used scope (maxPools)', { maxPools: 1 }, 0],
    ['a scope unused for poolTtlMs, exactly', { poolTtlMs: 1_000, sweepIntervalMs: 1 }, 1_000],
  ])('retires %s and gives its idle connection to the next scope', async (_, options, advance) => {
    const [a, b] = [uniqueTenant('la'), uniqueTenant('lb')]
    await createTenants([a, b])
    let now = 1_000_000
    const { pools } = testPools({ ...options, clock: { now: () => now } })
    await pools.query(a, 'SELECT 1')
    now += advance
    const { rows } = await pools.query<{ tenant: string }>(b, 'SELECT tenant FROM whoami')
    expect(rows).toEqual([{ tenant: b }])
    expect(keys(pools)).toEqual([b])
    // One connection served both: retired, a scope's idle connection stays to be rebound.
    expect(pools.stats().counters).toMatchObject({
      connectionsOpened: 1,
      connectionsRebound: 1,
      connectionsClosed: 0,
    })
  })

  it('never counts or retires the master scope for maxPools', async () => {
    const [a, b] = [uniqueTenant('ma'), uniqueTenant('mb')]
    await createTenants([a, b])
    let now = 1_000_000
    const { pools } = testPools({ maxPools: 1, clock: { now: () => now++ } })
    // The master scope is the least recently used one whenever a tenant needs room.
    await pools.master.query('SELECT 1')
    await pools.query(a, 'SELECT 1')
    await pools.query(b, 'SELECT 1')
    expect(keys(pools)).toEqual(['$master', b].sort())
  })

  it('forgets a login once no scope uses it and its connections have closed', async () => {
    const a = uniqueTenant('fl')
    await createTenants([a])
    let now = 1_000_000
    const { pools } = testPools({
      idleTimeoutMs: 1_000,
      poolTtlMs: 1_000,
      sweepIntervalMs: 1,
      clock: { now: () => now },
    })
    await pools.query(a, 'SELECT 1')
    expect(pools.stats().logins).toHaveLength(1)
    now += 1_000
    // The sweep timer (every millisecond here) closes the idle connection, retires the scope, then
    // forgets the login.
    expect(await eventually(() => pools.stats().logins.length === 0)).toBe(true)
    expect(pools.stats()).toMatchObject({ pools: [], totals: { total: 0 } })
  })

  it('keeps a scope unused for just under poolTtlMs', async () => {
    const a = uniqueTenant('ka')
    await createTenants([a])
    let now = 1_000_000
    const { pools } = testPools({ poolTtlMs: 1_000, sweepIntervalMs: 1, clock: { now: () => now } })
    await pools.query(a, 'SELECT 1')
    now += 999
    await pools.query(uniqueTenant('kb'), 'SELECT 1').catch(() => undefined)
    expect(keys(pools)).toContain(a)
  })

  it('never retires a scope whose login is being looked up, and retires it once it is quiet', async () => {
    const [a, b] = [uniqueTenant('wa'), uniqueTenant('wb')]
    await createTenants([a, b])
    const gate = signal()
    let now = 1_000_000
    const { pools, logs } = testPools({
      maxPools: 1,
      poolTtlMs: 10_000,
      sweepIntervalMs: 1,
      clock: { now: () => now },
      credentials: async (request) => {
        if (request.tenantId === a) await gate.done
        return { user: 'postgres', password: 'postgres' }
      },
    })
    const first = pools.query<{ tenant: string }>(a, 'SELECT tenant FROM whoami')
    await new Promise((r) => setTimeout(r, 20))
    // b needs room: a is the only other scope, and it is on its way to a connection.
    await pools.query(b, 'SELECT 1')
    expect(logs.map((l) => l.message)).toContain('maxScopes exceeded: every scope has a call in flight')
    expect(keys(pools)).toEqual([a, b].sort())
    gate.fire()
    expect((await first).rows).toEqual([{ tenant: a }])
    // Quiet now: the TTL retires both.
    now += 10_000
    await pools.query(uniqueTenant('wc'), 'SELECT 1').catch(() => undefined)
    expect(keys(pools)).not.toContain(a)
  })

  it.each([
    ['evicted', (p: { evict(id: string): Promise<number> }, id: string) => p.evict(id), 1],
    ['ended', (p: { end(): Promise<void> }) => p.end(), 0],
  ])(
    'refuses a call whose login lookup ends after its scope was %s, and opens nothing',
    async (_, end, logins) => {
      const a = uniqueTenant('xa')
      await createTenants([a])
      const gate = signal()
      const { pools } = testPools({
        credentials: async () => {
          await gate.done
          return { user: 'postgres', password: 'postgres' }
        },
      })
      const call = pools.query(a, 'SELECT 1').catch((e: unknown) => e)
      await new Promise((r) => setTimeout(r, 20))
      const ending = end(pools, a)
      gate.fire()
      await ending
      expect(await call).toBeInstanceOf(PoolsEndedError)
      expect(pools.stats().counters.connectionsOpened).toBe(0)
      // An ended registry attaches no login after the fact (one nobody would ever end).
      expect(pools.stats().logins).toHaveLength(logins)
    },
  )
})
