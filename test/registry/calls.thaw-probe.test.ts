// The first query() after a thaw, on a connection idle past validateAfterIdleMs, carries its
// liveness check instead of a separate ping: the server must answer something within
// validationTimeoutMs (an empty statement parsed and flushed ahead of the caller's). A slow statement
// is not mistaken for a silent server; a silent one fails the call truthfully (it may have run) and
// sends the next call to a fresh connection; a reset with no answer is still sent again.
import { ConnectionLostError } from '../../lib'
import {
  createTenants,
  databaseUrl,
  endTestPools,
  eventually,
  resumeBackend,
  sleep,
  stopBackend,
  testPools,
  uniqueTenant,
  withAdmin,
} from '../support/db'
import { type ResetProxy, resetProxy } from '../support/reset-proxy'

afterEach(endTestPools)

const VALIDATION_MS = 300
const IDLE_MS = 30

async function tenantsWithCalls(n: number): Promise<string[]> {
  const ids = Array.from({ length: n }, () => uniqueTenant('tp'))
  await createTenants(ids)
  for (const id of ids) await withAdmin((c) => c.query(`CREATE TABLE tenant_${id}.calls (n int)`))
  return ids
}

const countOf = (id: string, n: number) =>
  withAdmin(async (c) => {
    const { rows } = await c.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM tenant_${id}.calls WHERE n = $1`,
      [n],
    )
    return rows[0]?.n
  })

// One connection, so the thawed call gets the one the earlier invocation used.
const onePool = (connectionString?: string) =>
  testPools({
    budget: 1,
    maxPerPool: 1,
    validateAfterIdleMs: IDLE_MS,
    validationTimeoutMs: VALIDATION_MS,
    ...(connectionString ? { connectionString } : {}),
  }).pools

const pidOf = async (pools: ReturnType<typeof onePool>, id: string) =>
  (await pools.query<{ pid: number }>(id, 'SELECT pg_backend_pid() AS pid')).rows[0]?.pid as number

describe('Behaviour: the first statement after a thaw carries the liveness check', () => {
  it.each([
    ['its own scope', false],
    ['another scope (the reset rides too)', true],
  ])('lets a statement slower than the validation timeout finish, once, on %s', async (_, rebind) => {
    const [a, b] = await tenantsWithCalls(2)
    const pools = onePool()
    const first = await pidOf(pools, a as string)
    const target = (rebind ? b : a) as string
    await sleep(IDLE_MS * 3)
    pools.invocationStarted()
    const pingedBefore = pools.stats().counters.connectionsPinged

    // Act: runs three validation timeouts long; the server's first answer comes at once
    const { rows } = await pools.query<{ pid: number }>(
      target,
      `INSERT INTO calls (n) SELECT 7 FROM pg_sleep(${(VALIDATION_MS * 3) / 1000}) RETURNING pg_backend_pid() AS pid`,
    )

    // Assess: on the same connection, checked once, no timeout, the row written once
    expect(rows[0]?.pid).toBe(first)
    const { counters } = pools.stats()
    expect(counters.connectionsPinged - pingedBefore).toBe(1)
    expect(counters).toMatchObject({ validationTimeouts: 0, connectionsOpened: 1 })
    expect(await countOf(target, 7)).toBe(1)
  })

  it('fails the call (it may have run) when the server is silent, and the next call gets a fresh connection', async () => {
    const [a] = (await tenantsWithCalls(1)) as [string]
    const pools = onePool()
    const stopped = await pidOf(pools, a)
    try {
      // The backend stops: the kernel still takes the bytes, nothing answers (a hung server).
      stopBackend(stopped)
      await sleep(IDLE_MS * 3)
      pools.invocationStarted()

      // Act
      const failed = await pools.query(a, 'INSERT INTO calls (n) VALUES (8)').catch((e: unknown) => e)

      // Assess: told truthfully, and counted as an unanswered check
      expect(failed).toBeInstanceOf(ConnectionLostError)
      expect((failed as ConnectionLostError).mayHaveRun).toBe(true)
      expect(pools.stats().counters).toMatchObject({ validationTimeouts: 1 })
      const next = await pidOf(pools, a)
      expect(next).not.toBe(stopped)
      expect(pools.stats().counters.connectionsOpened).toBe(2)
    } finally {
      resumeBackend(stopped)
    }
    // The statement had reached the server: resumed, the backend runs it. "May have run" was true.
    expect(await eventually(async () => (await countOf(a, 8)) === 1, 5_000)).toBe(true)
    await withAdmin((c) => c.query('SELECT pg_terminate_backend($1)', [stopped]))
  })

  it('says a read-only call cannot have changed anything when the server is silent', async () => {
    const [a] = (await tenantsWithCalls(1)) as [string]
    const pools = onePool()
    const read = () =>
      pools.query<{ pid: number }>(a, 'SELECT pg_backend_pid() AS pid', [], { readOnly: true })
    const stopped = (await read()).rows[0]?.pid as number
    try {
      stopBackend(stopped)
      await sleep(IDLE_MS * 3)
      pools.invocationStarted()
      const failed = await read().catch((e: unknown) => e)
      expect(failed).toBeInstanceOf(ConnectionLostError)
      expect((failed as ConnectionLostError).mayHaveRun).toBe(false)
    } finally {
      resumeBackend(stopped)
      await withAdmin((c) => c.query('SELECT pg_terminate_backend($1)', [stopped]))
    }
  })

  it('still pings first within one invocation: a silent server there costs the caller nothing', async () => {
    const [a] = (await tenantsWithCalls(1)) as [string]
    const pools = onePool()
    const stopped = await pidOf(pools, a)
    try {
      stopBackend(stopped)
      await sleep(IDLE_MS * 3)
      // No invocationStarted: no freeze can lie between, the separate ping replaces it first.
      expect(await pidOf(pools, a)).not.toBe(stopped)
      expect(pools.stats().counters).toMatchObject({ validationTimeouts: 1, connectionsOpened: 2 })
    } finally {
      resumeBackend(stopped)
      await withAdmin((c) => c.query('SELECT pg_terminate_backend($1)', [stopped]))
    }
  })

  describe('met by a reset with no answer', () => {
    let proxy: ResetProxy
    beforeEach(async () => {
      proxy = await resetProxy(new URL(databaseUrl()))
    })
    afterEach(() => proxy.close())

    it('goes out with the statement in one write: no round trip of its own', async () => {
      const [a] = (await tenantsWithCalls(1)) as [string]
      const pools = onePool(proxy.url)
      await pools.query(a, 'SELECT 1')
      await sleep(IDLE_MS * 3)
      pools.invocationStarted()
      const before = proxy.clientWrites

      await pools.query(a, 'INSERT INTO calls (n) VALUES (10)')

      expect(proxy.clientWrites - before).toBe(1)
      expect(pools.stats().counters.connectionsPinged).toBe(1)
      expect(await countOf(a, 10)).toBe(1)
    })

    it.each([
      ['its own scope', false],
      ['another scope', true],
    ])('is sent again on another connection and runs once, on %s', async (_, rebind) => {
      const [a, b] = await tenantsWithCalls(2)
      const pools = onePool(proxy.url)
      await pools.query(a as string, 'SELECT 1')
      const target = (rebind ? b : a) as string
      await sleep(IDLE_MS * 3)
      pools.invocationStarted()
      proxy.arm('drop')

      await pools.query(target, 'INSERT INTO calls (n) VALUES (9)')

      expect(proxy.resets).toBe(1)
      expect(await countOf(target, 9)).toBe(1)
      expect(pools.stats().counters).toMatchObject({ connectionsOpened: 2, validationTimeouts: 0 })
    })
  })
})

// A backend ended while the environment was frozen sends its FATAL (57P01) then; lost with the
// link, it is sent again by the server's TCP and may arrive only after the thawed statement went
// out, as that statement's first answer. Reproduced here without a network: the backend is stopped,
// told to terminate, and let go only once the statement is in its socket; it acts on the signal
// before reading, and its FATAL is the first thing the client reads.
describe('Behaviour: a FATAL that is the first answer to the first statement after a thaw', () => {
  async function fatalFirst(pools: ReturnType<typeof onePool>, id: string, sql: string, crossed: boolean) {
    const pid = await pidOf(pools, id)
    stopBackend(pid)
    await withAdmin((c) => c.query('SELECT pg_terminate_backend($1)', [pid]))
    if (crossed) pools.invocationStarted()
    const call = pools.query(id, sql).then(
      () => undefined,
      (e: unknown) => e,
    )
    // Within the settle (two loop turns) and the write: the statement is in the socket by then.
    await sleep(50)
    resumeBackend(pid)
    return call
  }

  it.each([
    ['a read', 'SELECT 1'],
    ['a write', 'INSERT INTO calls (n) VALUES (11)'],
  ])('sends %s again on another connection: it was never read, and runs once', async (_, sql) => {
    const [a] = (await tenantsWithCalls(1)) as [string]
    // validateAfterIdleMs long: the check does not ride, nothing but the statement is sent.
    const pools = testPools({ budget: 1, maxPerPool: 1, validateAfterIdleMs: 60_000 }).pools

    expect(await fatalFirst(pools, a, sql, true)).toBeUndefined()

    expect(await countOf(a, 11)).toBe(sql.startsWith('INSERT') ? 1 : 0)
    expect(pools.stats().counters).toMatchObject({ connectionsOpened: 2 })
  })

  it('is reported when an answer came first: the backend had read the statement', async () => {
    const [a] = (await tenantsWithCalls(1)) as [string]
    // Idle past validateAfterIdleMs after a thaw: the check rides, and its ParseComplete is an answer.
    const pools = onePool()
    await pidOf(pools, a)
    await sleep(IDLE_MS * 3)
    pools.invocationStarted()
    const sql = `INSERT INTO calls (n) SELECT 12 FROM pg_sleep(5) RETURNING '${a}'`
    const call = pools.query(a, sql).then(
      () => undefined,
      (e: unknown) => e,
    )
    const active = () =>
      withAdmin(async (c) => {
        const { rows } = await c.query<{ pid: number }>(
          "SELECT pid FROM pg_stat_activity WHERE position($1 in query) > 0 AND state = 'active' AND pid <> pg_backend_pid()",
          [`'${a}'`],
        )
        return rows[0]?.pid
      })
    expect(await eventually(async () => (await active()) !== undefined)).toBe(true)
    await withAdmin(async (c) => c.query('SELECT pg_terminate_backend($1, 10000)', [await active()]))

    const err = await call
    expect((err as { code?: string }).code).toBe('57P01')
    expect(await countOf(a, 12)).toBe(0)
    expect(pools.stats().counters.connectionsOpened).toBe(1)
  })

  it('is reported within an invocation: there no freeze can explain it', async () => {
    const [a] = (await tenantsWithCalls(1)) as [string]
    const pools = testPools({ budget: 1, maxPerPool: 1, validateAfterIdleMs: 60_000 }).pools
    const err = await fatalFirst(pools, a, 'SELECT 1', false)
    expect((err as { code?: string }).code).toBe('57P01')
  })
})
