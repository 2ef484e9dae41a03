// pools.prewarm(): one connection opened ahead of the first call (TENANT_POOLS_PREWARM at init),
// bounded, never failing. Outcomes and counts only: no assertion on how long anything took.
import { once } from 'node:events'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { type CallLimits, newCallMeasure, type TenantPools } from '../../lib'
import {
  countBackends,
  createTenants,
  databaseUrl,
  endTestPools,
  eventually,
  lastStatements,
  signal,
  sleep,
  testPools,
  uniqueTenant,
} from '../support/db'
import { freePort } from '../support/free-port'
import type { LogEntry } from '../support/memory-log'

const target = new URL(databaseUrl())
const login = { user: decodeURIComponent(target.username), password: decodeURIComponent(target.password) }
const prewarmLogs = (logs: LogEntry[]) => logs.filter((l) => l.message.startsWith('prewarm'))
const WARM_UP_SQL = 'SELECT $1::text AS warmed_up, now() AS at'

// A TCP server on `port` that, as `mode` says, accepts and never answers (a database that went
// silent) or forwards to the test database (reachable again).
async function gate(port: number, mode: 'silent' | 'forward') {
  const sockets = new Set<Socket>()
  const state = { mode }
  const server: Server = createServer((client) => {
    sockets.add(client)
    client.on('error', () => client.destroy())
    client.on('close', () => sockets.delete(client))
    if (state.mode === 'silent') return
    const upstream = connect(Number(target.port), target.hostname)
    sockets.add(upstream)
    upstream.on('error', () => upstream.destroy())
    upstream.on('close', () => {
      sockets.delete(upstream)
      client.destroy()
    })
    client.on('close', () => upstream.destroy())
    client.pipe(upstream).pipe(client)
  })
  server.listen(port, '127.0.0.1')
  await once(server, 'listening')
  return {
    set: (m: 'silent' | 'forward') => {
      state.mode = m
    },
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}

const through = (port: number) => {
  const url = new URL(databaseUrl())
  url.port = String(port)
  return url.toString()
}

// The first request after a prewarm that failed: it opens its own connection, the one failure stays
// counted, and nothing more is logged.
async function firstQueryAfterAFailedPrewarm(pools: TenantPools, tenant: string, logs: LogEntry[]) {
  pools.invocationStarted()
  const { rows } = await pools.query<{ ok: number }>(tenant, 'SELECT 1 AS ok')
  expect(rows).toEqual([{ ok: 1 }])
  expect(pools.counters()).toMatchObject({ connectionsOpened: 1, connectFailures: 1 })
  expect(prewarmLogs(logs)).toHaveLength(1)
}

describe('Behaviour: prewarm', () => {
  afterEach(endTestPools)

  it('opens exactly one connection, parked idle, and the first query reuses it', async () => {
    // Prepare
    const tenant = uniqueTenant('pw')
    await createTenants([tenant])
    const { pools, prefix, logs } = testPools()

    // Act
    const outcome = await pools.prewarm({ timeoutMs: 1000 })

    // Assess: one backend, idle, opened for no call; the warm-up statement ran on it, its one checkout
    expect(outcome).toEqual({ outcome: 'opened' })
    expect(await countBackends(prefix)).toBe(1)
    expect(await lastStatements(prefix)).toEqual([WARM_UP_SQL])
    expect(pools.counters()).toMatchObject({ connectionsOpened: 1, connectionsReused: 1, checkouts: 1 })
    expect(pools.stats().totals).toMatchObject({ total: 1, idle: 1, active: 0 })
    expect(prewarmLogs(logs)).toEqual([])
    // A second prewarm finds the connection there and opens none, nor warms up again.
    expect((await pools.prewarm()).outcome).toBe('skipped')
    expect(pools.counters().checkouts).toBe(1)

    // Act: the first request
    pools.invocationStarted()
    const measure = newCallMeasure()
    const { rows } = await pools.query<{ ok: number }>(tenant, 'SELECT 1 AS ok', [], { measure })

    // Assess: served by the prewarmed connection
    expect(rows).toEqual([{ ok: 1 }])
    expect(pools.counters()).toMatchObject({ connectionsOpened: 1, connectionsReused: 2, checkouts: 2 })
    expect(measure).toMatchObject({ checkouts: 1, connectionsOpened: 0, connectionsReused: 1 })
    expect(await countBackends(prefix)).toBe(1)
  })

  it('runs the warm-up it is given once, within its bound, instead of its own statement', async () => {
    // Prepare
    const { pools, prefix, logs } = testPools()
    const given: CallLimits[] = []
    const before = Date.now()

    // Act
    const outcome = await pools.prewarm({
      timeoutMs: 800,
      warmUp: async (limits) => {
        given.push(limits)
        await pools.forMaster(limits).query('SELECT $1::int AS given_warm_up', [7])
      },
    })

    // Assess: on the prewarmed connection, bounded by the prewarm's deadline
    expect(outcome).toEqual({ outcome: 'opened' })
    expect(given).toHaveLength(1)
    expect(given[0]?.deadline).toBeGreaterThanOrEqual(before + 800)
    expect(given[0]?.deadline).toBeLessThanOrEqual(Date.now() + 800)
    expect(await lastStatements(prefix)).toEqual(['SELECT $1::int AS given_warm_up'])
    expect(pools.counters()).toMatchObject({ connectionsOpened: 1, checkouts: 1 })
    expect(prewarmLogs(logs)).toEqual([])
  })

  it('a warm-up that fails: still opened, the connection kept idle, logged once with no secret; the first query reuses it', async () => {
    // Prepare
    const tenant = uniqueTenant('pw')
    await createTenants([tenant])
    const { pools, prefix, logs } = testPools()

    // Act: a statement the server refuses (no such table)
    const outcome = await pools.prewarm({
      warmUp: (limits) => pools.forMaster(limits).query('SELECT * FROM no_such_table_pw'),
    })

    // Assess
    expect(outcome.outcome).toBe('opened')
    expect(outcome.warmUpError?.message).toMatch(/no_such_table_pw/)
    const logged = prewarmLogs(logs)
    expect(logged).toHaveLength(1)
    expect(logged[0]?.message).toMatch(/warm-up failed/)
    expect(logged[0]?.extra[0]).toMatchObject({ code: '42P01' })
    expect(JSON.stringify(logs)).not.toContain(login.password)
    expect(pools.stats().totals).toMatchObject({ total: 1, idle: 1, active: 0 })

    // Act: the first request
    pools.invocationStarted()
    const measure = newCallMeasure()
    const { rows } = await pools.query<{ ok: number }>(tenant, 'SELECT 1 AS ok', [], { measure })

    // Assess
    expect(rows).toEqual([{ ok: 1 }])
    expect(measure).toMatchObject({ connectionsOpened: 0, connectionsReused: 1 })
    expect(pools.counters().connectionsOpened).toBe(1)
    expect(await countBackends(prefix)).toBe(1)
    expect(prewarmLogs(logs)).toHaveLength(1)
  })

  it('a request that comes while the prewarm is still opening waits for that connection: one opened', async () => {
    // Prepare: the connection's own credentials (the provider's second call) are held back
    const tenant = uniqueTenant('pw')
    await createTenants([tenant])
    const held = signal()
    let calls = 0
    const { pools, prefix, logs } = testPools({
      credentials: async () => {
        if (++calls === 2) await held.done
        return login
      },
    })

    // Act: the prewarm's bound passes with its connection still on its way; then a request comes
    let warmUps = 0
    const outcome = await pools.prewarm({
      timeoutMs: 50,
      warmUp: async () => {
        warmUps++
      },
    })
    expect(outcome).toEqual({ outcome: 'timedOut' })
    pools.invocationStarted()
    const measure = newCallMeasure()
    const request = pools.query<{ ok: number }>(tenant, 'SELECT 1 AS ok', [], { measure })
    await eventually(() => pools.stats().totals.waiting === 1)
    held.fire()

    // Assess: the request got the prewarm's connection; no second one was asked for or opened, and
    // no warm-up ran: the connection was the request's (handed over in the step that opened it)
    expect((await request).rows).toEqual([{ ok: 1 }])
    expect(warmUps).toBe(0)
    expect(pools.counters()).toMatchObject({ connectionsOpened: 1, connectFailures: 0, checkouts: 1 })
    expect(measure).toMatchObject({ connectionsOpened: 0, connectionsReused: 1 })
    // Two asks for the login (the prewarm's and the request's scope), one for the one connection.
    expect(calls).toBe(3)
    expect(await countBackends(prefix)).toBe(1)
    expect(prewarmLogs(logs)).toHaveLength(1)
  })

  it('a prewarm that fails while a request waits for it: the request opens its own', async () => {
    // Prepare: the prewarm's connection gets no credentials
    const tenant = uniqueTenant('pw')
    await createTenants([tenant])
    const held = signal()
    let calls = 0
    const { pools, prefix, logs } = testPools({
      credentials: async () => {
        if (++calls === 2) {
          await held.done
          throw new Error('Secrets Manager said no (pw-Secret-1)')
        }
        return login
      },
    })
    expect((await pools.prewarm({ timeoutMs: 50 })).outcome).toBe('timedOut')
    pools.invocationStarted()
    const request = pools.query<{ ok: number }>(tenant, 'SELECT 1 AS ok')
    await eventually(() => pools.stats().totals.waiting === 1)

    // Act
    held.fire()

    // Assess: the request is served, by a connection of its own; the failure was logged once, at the bound
    expect((await request).rows).toEqual([{ ok: 1 }])
    expect(pools.counters()).toMatchObject({ connectionsOpened: 1, connectFailures: 1 })
    expect(await countBackends(prefix)).toBe(1)
    expect(prewarmLogs(logs)).toHaveLength(1)
    expect(JSON.stringify(logs)).not.toContain('pw-Secret-1')
  })

  it('an unreachable database (connection refused): failed, logged once with no secret; the next query works once it is reachable', async () => {
    // Prepare: nothing listens on the port
    const tenant = uniqueTenant('pw')
    await createTenants([tenant])
    const port = await freePort()
    const { pools, logs } = testPools({ connectionString: through(port) })

    // Act
    const outcome = await pools.prewarm({ timeoutMs: 1000 })

    // Assess
    expect(outcome.outcome).toBe('failed')
    expect(outcome.error?.name).toBe('ConnectError')
    expect(pools.counters()).toMatchObject({ connectionsOpened: 0, connectFailures: 1 })
    const logged = prewarmLogs(logs)
    expect(logged).toHaveLength(1)
    expect(logged[0]?.extra[0]).toMatchObject({ error: 'ConnectError', cause: 'ECONNREFUSED' })
    expect(JSON.stringify(logs)).not.toContain(login.password)

    // Act: the database is reachable again
    const door = await gate(port, 'forward')
    try {
      await firstQueryAfterAFailedPrewarm(pools, tenant, logs)
    } finally {
      await pools.end()
      await door.close()
    }
  })

  it('a database that accepts and never answers: timed out at the bound, logged once; the next query works once it answers', async () => {
    // Prepare
    const tenant = uniqueTenant('pw')
    await createTenants([tenant])
    const port = await freePort()
    const door = await gate(port, 'silent')
    const { pools, logs } = testPools({ connectionString: through(port), connectTimeoutMs: 1000 })
    try {
      // Act
      const outcome = await pools.prewarm({ timeoutMs: 100 })

      // Assess: resolved while its attempt was still on its way; that attempt then fails, counted, not logged again
      expect(outcome).toEqual({ outcome: 'timedOut' })
      expect(pools.stats().totals.total).toBe(1)
      expect(await eventually(() => pools.counters().connectFailures === 1)).toBe(true)
      expect(pools.stats().totals.total).toBe(0)
      expect(prewarmLogs(logs)).toHaveLength(1)

      // Act: the database answers again
      door.set('forward')
      await firstQueryAfterAFailedPrewarm(pools, tenant, logs)
    } finally {
      await pools.end()
      await door.close()
    }
  })

  it('counts its bound from the call: what the provider took before answering is inside it', async () => {
    // Prepare: a provider whose synchronous part takes 900 ms of the 1000 (as requiring an SDK does),
    // by the registry's clock; a database that never answers, and a connect timeout of 300 ms.
    const port = await freePort()
    const door = await gate(port, 'silent')
    let now = 1_000_000
    const { pools } = testPools({
      connectionString: through(port),
      connectTimeoutMs: 300,
      clock: { now: () => now },
      credentials: () => {
        now += 900
        return Promise.resolve(login)
      },
    })
    try {
      // Act
      const outcome = await pools.prewarm({ timeoutMs: 1000 })

      // Assess: the 100 ms left ran out before the connect timeout; a bound restarted after the
      // provider's start (1000 ms) would have seen the attempt fail first.
      expect(outcome).toEqual({ outcome: 'timedOut' })
      expect(pools.counters().connectFailures).toBe(0)
    } finally {
      await pools.end()
      await door.close()
    }
  })

  it('a credentials provider that never answers: resolved within the bound, logged once; the next query works', async () => {
    // Prepare: the first ask never settles
    const tenant = uniqueTenant('pw')
    await createTenants([tenant])
    let calls = 0
    let firstSettled = false
    const { pools, prefix, logs } = testPools({
      credentials: () => {
        if (++calls === 1) {
          return new Promise<never>(() => {}).finally(() => {
            firstSettled = true
          })
        }
        return Promise.resolve(login)
      },
    })

    // Act
    const outcome = await pools.prewarm({ timeoutMs: 100 })

    // Assess: answered while the provider still had not (it never does). The login's look-up is
    // bounded by the same instant: whichever timer fires first answers, and the look-up's says why.
    expect(['failed', 'timedOut']).toContain(outcome.outcome)
    if (outcome.outcome === 'failed') {
      expect(outcome.error?.message).toMatch(/the credentials provider did not answer/)
    }
    expect(firstSettled).toBe(false)
    expect(prewarmLogs(logs)).toHaveLength(1)
    expect(pools.counters().connectionsOpened).toBe(0)

    // Act: the first request
    pools.invocationStarted()
    const { rows } = await pools.query<{ ok: number }>(tenant, 'SELECT 1 AS ok')

    // Assess
    expect(rows).toEqual([{ ok: 1 }])
    expect(pools.counters().connectionsOpened).toBe(1)
    expect(await countBackends(prefix)).toBe(1)
    await sleep(150)
    expect(prewarmLogs(logs)).toHaveLength(1)
  })

  it('does nothing on an ended registry, and never rejects', async () => {
    const { pools } = testPools()
    await pools.end()
    expect((await pools.prewarm()).outcome).toBe('skipped')
    expect(pools.counters().connectionsOpened).toBe(0)
  })
})
