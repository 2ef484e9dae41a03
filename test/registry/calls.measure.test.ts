// What a call's `measure` reports (the tenantDb middleware's per-request figures): each checkout
// counted once, as opened, reused, rebound or replaced, and the time it waited; and what the
// registry's own counters say of the same calls.
import { spawnSync } from 'node:child_process'
import { newCallMeasure } from '../../lib'
import {
  createTenants,
  databaseUrl,
  endTestPools,
  holdConnection,
  testPools,
  uniqueTenant,
} from '../support/db'

afterEach(endTestPools)

describe('Registry: a call’s measure', () => {
  it('counts a first call as opened, the next as reused, and a rebind riding with the statement', async () => {
    const [a, b] = [uniqueTenant('ma'), uniqueTenant('mb')]
    await createTenants([a, b])
    const { pools } = testPools()
    const measure = newCallMeasure()
    await pools.query(a, 'SELECT 1', [], { measure })
    expect(measure).toMatchObject({
      checkouts: 1,
      connectionsOpened: 1,
      connectionsReused: 0,
      connectionsRebound: 0,
    })
    await pools.query(a, 'SELECT 1', [], { measure })
    expect(measure).toMatchObject({
      checkouts: 2,
      connectionsOpened: 1,
      connectionsReused: 1,
      connectionsRebound: 0,
    })
    // b takes a's idle connection: the SETs ride with b's statement, in one round trip.
    const { rows } = await pools.query<{ tenant: string }>(b, 'SELECT tenant FROM whoami', [], { measure })
    expect(rows).toEqual([{ tenant: b }])
    expect(measure).toMatchObject({
      checkouts: 3,
      connectionsOpened: 1,
      connectionsReused: 2,
      connectionsRebound: 1,
    })
    expect(pools.stats().counters).toMatchObject({
      connectionsOpened: 1,
      connectionsRebound: 1,
      connectionsPinged: 0,
    })
  })

  it('counts a rebind done by a reset of its own (a statement that cannot carry it)', async () => {
    const [a, b] = [uniqueTenant('ra'), uniqueTenant('rb')]
    await createTenants([a, b])
    const { pools } = testPools()
    await pools.query(a, 'SELECT 1')
    const measure = newCallMeasure()
    // A transaction's callback gets a connection already bound: the rebind cannot wait for it.
    await pools.transaction(b, (c) => c.query('SELECT 1'), { measure })
    expect(measure).toMatchObject({ checkouts: 1, connectionsReused: 1, connectionsRebound: 1 })
    expect(pools.stats().counters.connectionsRebound).toBe(1)
  })

  // As during a freeze: the server kills the idle backend while this process reads nothing (a
  // child does it, synchronously), so the kill waits unread in the socket when the next invocation
  // takes the connection. pg_terminate_backend only signals the backend: with a timeout it also
  // waits until the backend has exited, so its FATAL and FIN are in this process's socket before the
  // checkout. Without it, a backend slow to act on the signal (a loaded machine) sent its FATAL
  // after the checkout's settle turn, as the answer to a statement it may have been killed running.
  const killedUnread = (pid: number | undefined): void => {
    const killer = `const { Client } = require('pg'); const c = new Client(${JSON.stringify(databaseUrl())});
      c.connect().then(() => c.query('SELECT pg_terminate_backend($1, 30000) AS gone', [${pid}]))
        .then((r) => c.end().then(() => process.exit(r.rows[0].gone ? 0 : 3)))`
    expect(spawnSync(process.execPath, ['-e', killer], { cwd: process.cwd() }).status).toBe(0)
  }

  // A tenant's connection, freed "just now" by the registry's clock (which stands still), whose
  // backend was then killed unread; and a new invocation. Only the invocation boundary makes the
  // next call wary of what the socket holds.
  const killedBeforeInvocation = async (label: string) => {
    const tenant = uniqueTenant(label)
    await createTenants([tenant])
    const { pools } = testPools({ clock: { now: () => 1_000_000 } })
    const pid = (await pools.query<{ pid: number }>(tenant, 'SELECT pg_backend_pid() AS pid')).rows[0]?.pid
    killedUnread(pid)
    pools.invocationStarted()
    return { pools, tenant, pid }
  }

  it('counts a connection found dead at checkout as replaced, once, in both places', async () => {
    const { pools, tenant: a } = await killedBeforeInvocation('da')
    const measure = newCallMeasure()
    // Two statements in one string could not be sent again after meeting the FATAL: the checkout
    // reads the socket first.
    await pools.query(a, 'SELECT 1; SELECT 2', undefined, { measure })
    expect(measure).toMatchObject({ checkouts: 1, connectionsReplaced: 1, connectionsOpened: 1 })
    expect(pools.stats().counters).toMatchObject({ connectionsReplaced: 1, connectionsOpened: 2 })
  })

  it('sends a statement that met a FATAL waiting since before the invocation again, counted as replaced', async () => {
    const { pools, tenant: a, pid } = await killedBeforeInvocation('dq')
    const measure = newCallMeasure()
    // Sent at once, with no settle turn: the backend's FATAL comes before any answer, so it never
    // read the statement, and the statement goes out again on a new connection.
    const { rows } = await pools.query<{ pid: number }>(a, 'SELECT pg_backend_pid() AS pid', [], { measure })
    expect(rows[0]?.pid).not.toBe(pid)
    expect(measure).toMatchObject({ checkouts: 2, connectionsReplaced: 1, connectionsOpened: 1 })
    expect(pools.stats().counters).toMatchObject({
      connectionsReplaced: 1,
      connectionsOpened: 2,
      serverKills: 1,
    })
  })

  it('adds the time a call waited for a connection', async () => {
    const a = uniqueTenant('wa')
    await createTenants([a])
    const { pools } = testPools({ maxPerPool: 1 })
    const held = await holdConnection(pools, a)
    const measure = newCallMeasure()
    const waiting = pools.query(a, 'SELECT 1', [], { measure })
    await new Promise((r) => setTimeout(r, 150))
    held.release()
    await waiting
    await held.done
    expect(measure.acquireWaitMs).toBeGreaterThanOrEqual(100)
    expect(pools.stats().counters.acquireWaitMs).toBeGreaterThanOrEqual(measure.acquireWaitMs)
  })

  it('checks, but does not ping, a connection that rides a rebind after a pause', async () => {
    const [a, b] = [uniqueTenant('pa'), uniqueTenant('pb')]
    await createTenants([a, b])
    const { pools } = testPools({ validateAfterIdleMs: 60_000 })
    await pools.query(a, 'SELECT 1')
    await new Promise((r) => setTimeout(r, 50))
    await pools.query(b, 'SELECT 1')
    expect(pools.stats().counters).toMatchObject({
      connectionsRebound: 1,
      connectionsPinged: 0,
      connectionsOpened: 1,
    })
  })
})
