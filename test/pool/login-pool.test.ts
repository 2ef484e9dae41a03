// LoginPool on its own, against the real server: the bookkeeping the registry relies on (counts,
// quiet, which idle connection a scope takes, what each close closes, who an end refuses), and the
// fairness rule between logins, on a clock the test moves. The registry's tests reach this code
// only through their own paths, where much of it cannot be seen (issue 15's surviving mutants).
import { getEventListeners } from 'node:events'
import { Client } from 'pg'
import { ConnectError, DeadlineExceededError, PoolExhaustedError, PoolsEndedError } from '../../lib/errors'
import { ConnectionBudget } from '../../lib/pool/budget'
import type { PooledConnection } from '../../lib/pool/connection'
import { LoginPool, type LoginPoolConfig } from '../../lib/pool/login-pool'
import { ScopeUse } from '../../lib/pool/scope-use'
import { databaseUrl, withAdmin } from '../support/db'

const CONNECT_TIMEOUT_MS = 2_000
const IDLE_TIMEOUT_MS = 10_000

let time = 1_000_000
const clock = { now: () => time }
const scopeOf = (key: string) =>
  new ScopeUse(
    { key, tenantId: key, app: null, schema: 'public', cluster: 'main', readOnly: false, onReader: false },
    'login-pool-test',
    time,
  )
const delay = (ms: number) => new Promise((r) => setTimeout(r, ms))
const until = async (condition: () => boolean) => {
  for (let i = 0; i < 200 && !condition(); i++) await delay(10)
  expect(condition()).toBe(true)
}

// What createClient gives in these tests: a client of the test server. The credentials it returns
// are only bookkeeping; the client logs in with the connection string's.
const clientOfTestServer = () => ({
  client: new Client({ connectionString: databaseUrl() }),
  credentials: { user: 'u', password: 'p' },
})

interface Harness {
  pool: LoginPool
  budget: ConnectionBudget
  failures: Error[]
  closed: () => number
}

const pools: LoginPool[] = []

function loginPool(
  overrides: Partial<LoginPoolConfig> & { slowScopes?: Map<string, number> } = {},
  budget = new ConnectionBudget(5, () => {}, clock.now),
): Harness {
  const failures: Error[] = []
  let closed = 0
  const { slowScopes, ...config } = overrides
  const pool = new LoginPool({
    key: 'login',
    maxPerScope: 1,
    idleTimeoutMs: IDLE_TIMEOUT_MS,
    maxLifetimeMs: 10 * IDLE_TIMEOUT_MS,
    maxSchemasPerConnection: 0,
    keepFullConnection: false,
    connectTimeoutMs: CONNECT_TIMEOUT_MS,
    budget,
    clock,
    invocation: () => 1,
    events: {
      opened: () => {},
      closed: () => {
        closed++
      },
      reused: () => {},
      acquireTimedOut: () => {},
      connectFailed: (err) => failures.push(err),
      credentialsRefused: () => {},
      serverFull: () => {},
      lost: () => {},
      retiredBySchemas: () => {},
    },
    // A provider that takes its time for some scopes: a slow credentials fetch, as Secrets Manager can be.
    createClient: async (scope) => {
      const ms = slowScopes?.get(scope.key)
      if (ms !== undefined) await delay(ms)
      return clientOfTestServer()
    },
    ...config,
  })
  pools.push(pool)
  return { pool, budget, failures, closed: () => closed }
}

const pending = (p: Promise<unknown>) =>
  Promise.race([
    p.then(
      () => 'settled',
      () => 'settled',
    ),
    delay(50).then(() => 'pending'),
  ])

// Scopes a and b, each holding a connection opened for it. Opened one after the other: opened
// together, both would be opened for the first caller's scope.
async function twoHeld() {
  const h = loginPool()
  const a = scopeOf('a')
  const b = scopeOf('b')
  const ca = await h.pool.acquire(a)
  const cb = await h.pool.acquire(b)
  return { ...h, a, b, ca, cb }
}

afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.end()))
  time = 1_000_000
})

describe('LoginPool: its counts', () => {
  it('counts a connection being opened in total, and an idle one not as active', async () => {
    const { pool } = loginPool()
    const a = scopeOf('a')
    const opening = pool.acquire(a)
    expect([pool.total, pool.active, pool.idle, pool.waiting]).toEqual([1, 0, 0, 1])
    const conn = await opening
    expect([pool.total, pool.active, pool.idle, pool.waiting]).toEqual([1, 1, 0, 0])
    pool.release(conn)
    expect([pool.total, pool.active, pool.idle]).toEqual([1, 0, 1])
  })

  it('is quiet only when nothing is held, awaited or being opened', async () => {
    const budget = new ConnectionBudget(1, () => {}, clock.now)
    const { pool } = loginPool({ slowScopes: new Map([['slow', 300]]) }, budget)
    const other = loginPool({}, budget).pool
    expect(pool.quiet).toBe(true)

    // Held: active only.
    const a = scopeOf('a')
    const held = await pool.acquire(a)
    expect(pool.quiet).toBe(false)
    pool.release(held)
    expect(pool.quiet).toBe(true)
    pool.closeIdle()
    await until(() => budget.used === 0)

    // Awaited: a caller queued for the budget, which another login holds; nothing opening.
    const blocker = await other.acquire(scopeOf('o'))
    const queued = pool.acquire(a)
    expect([pool.active, pool.waiting, pool.total]).toEqual([0, 1, 0])
    expect(pool.quiet).toBe(false)
    other.release(blocker, new Error('close it'))
    pool.release(await queued)
    pool.closeIdle()
    await until(() => budget.used === 0)

    // Opening: its caller gave up, the connection is still on its way.
    const abort = new AbortController()
    const gaveUp = pool.acquire(scopeOf('slow'), { waitMs: 5_000, deadlineBound: true, signal: abort.signal })
    abort.abort()
    await expect(gaveUp).rejects.toBeInstanceOf(DeadlineExceededError)
    expect([pool.active, pool.waiting, pool.total]).toEqual([0, 0, 1])
    expect(pool.quiet).toBe(false)
  })
})

describe('LoginPool: which idle connection a scope takes', () => {
  async function twoIdle(order: 'a first' | 'b first') {
    const held = await twoHeld()
    const { pool, ca, cb } = held
    for (const c of order === 'a first' ? [ca, cb] : [cb, ca]) pool.release(c)
    return held
  }

  it('takes the idle connection already bound to it, not the one idle longest', async () => {
    const { pool, b, cb } = await twoIdle('a first')
    expect(b.idle).toBe(1)
    expect(pool.acquireNow(b, time)).toBe(cb)
    expect([b.idle, pool.idle]).toEqual([0, 1])
    pool.release(cb)
  })

  it('takes the one idle longest when none is bound to it (to rebind it)', async () => {
    const { pool, a, ca } = await twoIdle('a first')
    const c = scopeOf('c')
    expect(pool.acquireNow(c, time)).toBe(ca)
    expect(a.idle).toBe(0)
    pool.release(ca)
  })

  it('closes a stale idle connection it finds instead of handing it out, bound or not', async () => {
    const { pool, a, closed } = await twoIdle('b first')
    time += IDLE_TIMEOUT_MS
    expect(pool.acquireNow(a, time)).toBeUndefined()
    expect(pool.acquireNow(scopeOf('c'), time)).toBeUndefined()
    expect([pool.idle, pool.total, closed()]).toEqual([0, 0, 2])
  })

  it('gives a scope at its limit no idle connection, and refuses an ended scope', async () => {
    const { pool, a } = await twoIdle('a first')
    const held = pool.acquireNow(a, time) as PooledConnection
    expect(held).toBeDefined()
    expect(pool.acquireNow(a, time)).toBeUndefined()
    expect(pool.idle).toBe(1)
    pool.release(held)

    const ended = scopeOf('ended')
    ended.ended = true
    expect(pool.acquireNow(ended, time)).toBeUndefined()
    await expect(pool.acquire(ended)).rejects.toThrow(new PoolsEndedError('Pool ended has been ended'))
    expect(pool.idle).toBe(2)
  })

  it('marks a released session for a reset only when asked to', async () => {
    const { pool } = loginPool()
    const a = scopeOf('a')
    const conn = await pool.acquire(a)
    pool.release(conn)
    expect(conn.needsReset).toBe(false)
    pool.release(await pool.acquire(a), undefined, true)
    expect(conn.needsReset).toBe(true)
  })
})

describe('LoginPool: closing', () => {
  it('sweeps only stale idle connections and says how many it closed', async () => {
    const { pool } = loginPool({ maxPerScope: 2 })
    const a = scopeOf('a')
    const [c1, c2] = await Promise.all([pool.acquire(a), pool.acquire(a)])
    pool.release(c1 as PooledConnection)
    time += IDLE_TIMEOUT_MS / 2
    pool.release(c2 as PooledConnection)
    time += IDLE_TIMEOUT_MS / 2
    expect(pool.sweep(time)).toBe(1)
    expect(pool.idle).toBe(1)
    expect(pool.sweep(time)).toBe(0)
  })

  it('closes the idle connections of one scope, or all of them, and says how many', async () => {
    const { pool, a, b, ca, cb } = await twoHeld()
    pool.release(ca)
    pool.release(cb)
    expect(pool.closeIdle(a)).toBe(1)
    expect([a.idle, b.idle, pool.idle]).toEqual([0, 1, 1])
    expect(pool.closeIdle()).toBe(1)
    expect(pool.idle).toBe(0)
  })

  it('closes the connection idle longest, and says whether there was one', async () => {
    const { pool, a, b, ca, cb } = await twoHeld()
    pool.release(ca)
    time += 1
    pool.release(cb)
    expect(pool.oldestIdleSince).toBe(time - 1)
    expect(pool.closeOldestIdle()).toBe(true)
    expect([a.idle, b.idle]).toEqual([0, 1])
    expect(pool.closeOldestIdle()).toBe(true)
    expect(pool.closeOldestIdle()).toBe(false)
  })

  it('ends one scope: refuses its waiters only, and closes its connections once freed', async () => {
    const { pool, a, b, ca, cb } = await twoHeld()
    // The other scope's waiter first in the queue: a loop over every waiter, splicing the queue as it
    // refuses them, would refuse it and then skip a's.
    const waitingB = pool.acquire(b)
    const refusedA = pool.acquire(a).catch((err: unknown) => err)
    const endedA = pool.endScope(a)
    expect(await pending(waitingB)).toBe('pending')
    expect(await refusedA).toEqual(new PoolsEndedError('Pool a was ended while waiting for a connection'))
    pool.release(ca)
    await endedA
    pool.release(cb)
    pool.release(await waitingB)
    expect(pool.idle).toBe(1)
  })

  it('ends a scope closing its idle connections by default, or leaving them for other scopes to rebind', async () => {
    const { pool, a, b, ca, cb } = await twoHeld()
    pool.release(ca)
    pool.release(cb)
    await pool.endScope(a, false)
    expect([a.idle, pool.idle]).toEqual([1, 2])
    await pool.endScope(b)
    expect([b.idle, pool.idle]).toEqual([0, 1])
  })

  it('end() refuses every waiter, the ones queued for the budget too, and gives back their claims', async () => {
    const budget = new ConnectionBudget(1, () => {}, clock.now)
    const { pool } = loginPool({}, budget)
    const other = loginPool({}, budget).pool
    const blocker = await other.acquire(scopeOf('o'))
    const waiting = pool.acquire(scopeOf('a')).catch((err: unknown) => err)
    expect(budget.waiting).toBe(1)
    await pool.end()
    expect(await waiting).toEqual(new PoolsEndedError('Pool a was ended while waiting for a connection'))
    expect(budget.waiting).toBe(0)
    other.release(blocker)
  })
})

describe('LoginPool: waiting', () => {
  it('leaves no listener on a caller’s signal once the caller is served', async () => {
    const { pool } = loginPool()
    const a = scopeOf('a')
    const held = await pool.acquire(a)
    const signal = new AbortController().signal
    const waiting = pool.acquire(a, { waitMs: 5_000, deadlineBound: true, signal })
    expect(getEventListeners(signal, 'abort')).toHaveLength(1)
    pool.release(held)
    pool.release(await waiting)
    expect(getEventListeners(signal, 'abort')).toHaveLength(0)
  })

  it('says which pool an aborted wait was for', async () => {
    const { pool } = loginPool()
    const a = scopeOf('a')
    const held = await pool.acquire(a)
    const abort = new AbortController()
    const waiting = pool.acquire(a, { waitMs: 5_000, deadlineBound: true, signal: abort.signal })
    abort.abort()
    await expect(waiting).rejects.toThrow(
      new DeadlineExceededError('The wait for a connection of pool a was aborted'),
    )
    pool.release(held)
  })

  it('times out a caller at its limit as exhausted, saying what was taken, and by its deadline when bound to one', async () => {
    const { pool } = loginPool({ connectTimeoutMs: 100 })
    const a = scopeOf('a')
    const held = await pool.acquire(a)
    await expect(pool.acquire(a)).rejects.toThrow(
      new PoolExhaustedError(
        'No connection for pool a within 100 ms: its connections in use (1 of max 1) and the environment ' +
          'budget (1 of 5) were taken. Retry later, or raise maxPerScope / budget.',
      ),
    )
    await expect(pool.acquire(a, { waitMs: 50, deadlineBound: true })).rejects.toThrow(
      new DeadlineExceededError("No connection for pool a before the call's deadline"),
    )
    pool.release(held)
  })

  it('blames a slow connection only when the caller waits for it, not for its own limit or the budget', async () => {
    const budget = new ConnectionBudget(1, () => {}, clock.now)
    const { pool, failures } = loginPool(
      { slowScopes: new Map([['slow', 400]]), connectTimeoutMs: 200 },
      budget,
    )
    const slow = scopeOf('slow')

    // The caller waits for its own connection, which takes longer than the connect timeout.
    await expect(pool.acquire(slow, { waitMs: 100, deadlineBound: false })).rejects.toThrow(
      new ConnectError('Opening a connection for pool slow took longer than 200 ms'),
    )
    // That attempt's deadline fails it (answering no caller) with its own message.
    await delay(150)
    expect(failures.map((e) => e.message)).toEqual([
      'Opening a connection for pool slow took longer than 200 ms',
    ])
    await delay(400)

    // Two other scopes' callers queue for the budget slot the slow attempt holds. The first to time
    // out waited for the budget, still claimed for the other: exhaustion, not a slow server.
    const opening = pool.acquire(slow).catch(() => undefined)
    const b = pool.acquire(scopeOf('b'), { waitMs: 100, deadlineBound: false })
    const c = pool.acquire(scopeOf('c'), { waitMs: 1_000, deadlineBound: false }).then(
      (conn) => pool.release(conn),
      () => undefined,
    )
    await expect(b).rejects.toBeInstanceOf(PoolExhaustedError)
    await Promise.all([opening, c])
  })

  it('blames its own limit, not a connection another scope is opening, when a caller at its limit times out', async () => {
    const { pool } = loginPool({ slowScopes: new Map([['slow', 400]]) })
    const a = scopeOf('a')
    const held = await pool.acquire(a)
    const opening = pool.acquire(scopeOf('slow')).catch(() => undefined)
    await expect(pool.acquire(a, { waitMs: 100, deadlineBound: false })).rejects.toBeInstanceOf(
      PoolExhaustedError,
    )
    pool.release(held)
    const conn = await opening
    if (conn) pool.release(conn)
  })
})

describe('LoginPool: what the server ends, and what a caller gives up', () => {
  it('closes a checked-out connection the server ended when its caller gives it back, not before, and never parks it', async () => {
    const { pool, closed } = loginPool()
    const conn = await pool.acquire(scopeOf('a'))
    const pid = (conn.client as unknown as { processID: number }).processID
    await withAdmin((admin) => admin.query('SELECT pg_terminate_backend($1)', [pid]))
    await until(() => conn.lost)
    // Still the caller's until it gives it back: it counts against the pool, and nothing closed it.
    expect([pool.total, pool.active, closed()]).toEqual([1, 1, 0])
    pool.release(conn)
    expect([pool.total, pool.idle, closed()]).toEqual([0, 0, 1])
  })

  it('a caller who times out gives back only its own budget claim: the next caller is still served', async () => {
    const budget = new ConnectionBudget(1, () => {}, clock.now)
    const { pool } = loginPool({}, budget)
    const other = loginPool({}, budget).pool
    const blocker = await other.acquire(scopeOf('o'))
    const first = pool.acquire(scopeOf('a'), { waitMs: 100, deadlineBound: false })
    const second = pool.acquire(scopeOf('b'), { waitMs: 5_000, deadlineBound: false })
    expect(budget.waiting).toBe(2)
    await expect(first).rejects.toBeInstanceOf(PoolExhaustedError)
    expect(budget.waiting).toBe(1)
    other.release(blocker, new Error('close it'))
    pool.release(await second)
  })
})

describe('LoginPool: fairness between logins sharing one budget slot', () => {
  // Login A holds the only slot; its next caller waits for it from `waiterAt`; login B has claimed a
  // slot since `claimAt`. When A's connection comes back at `releaseAt`, it goes to B (closed, so the
  // slot returns) only if B has waited longer than A's caller, and for at least a quarter of the
  // connect timeout (500 ms here).
  async function releaseWith(
    claimAt: number,
    waiterAt: number,
    releaseAt: number,
  ): Promise<'kept' | 'given'> {
    const budget = new ConnectionBudget(1, () => {}, clock.now)
    const A = loginPool({}, budget).pool
    const B = loginPool({}, budget).pool
    const a = scopeOf('a')
    const held = await A.acquire(a)
    const base = time
    const steps = [
      {
        at: claimAt,
        run: () =>
          void B.acquire(scopeOf('b')).then(
            (c) => B.release(c),
            () => undefined,
          ),
      },
      {
        at: waiterAt,
        run: () =>
          void A.acquire(a).then(
            (c) => A.release(c),
            () => undefined,
          ),
      },
    ].sort((x, y) => x.at - y.at)
    for (const step of steps) {
      time = base + step.at
      step.run()
    }
    expect(budget.waiting).toBe(1)
    time = base + releaseAt
    A.release(held)
    return A.total === 0 ? 'given' : 'kept'
  }

  it.each([
    [0, 100, 600, 'given'],
    [0, 100, 500, 'given'],
    [0, 100, 499, 'kept'],
    [100, 0, 10_000, 'kept'],
    [100, 100, 10_000, 'kept'],
  ] as const)(
    'B claimed at %i ms, A’s caller at %i ms, released at %i ms: the connection is %s',
    async (claimAt, waiterAt, releaseAt, outcome) => {
      expect(await releaseWith(claimAt, waiterAt, releaseAt)).toBe(outcome)
    },
  )
})

// Clients that count how often they connect and how many have closed their socket.
function countedClients() {
  const counts = { connects: 0, ended: 0 }
  const create = () => {
    const made = clientOfTestServer()
    const { client } = made
    const connect = client.connect.bind(client)
    client.connect = (() => {
      counts.connects++
      return connect()
    }) as typeof client.connect
    client.once('end', () => {
      counts.ended++
    })
    return made
  }
  return { counts, create }
}

describe('LoginPool: end, failed and late connections', () => {
  it('resolves end() only once every socket has closed, a checked-out one too', async () => {
    const { counts, create } = countedClients()
    const { pool } = loginPool({ maxPerScope: 2, createClient: async () => create() })
    const a = scopeOf('a')
    const [held, idle] = await Promise.all([pool.acquire(a), pool.acquire(a)])
    pool.release(idle)

    const ended = pool.end()

    expect(await pending(ended)).toBe('pending')
    pool.release(held)
    await ended
    expect(counts).toEqual({ connects: 2, ended: 2 })
  })

  it('resolves end() only once the sockets of the idle connections it closes have closed', async () => {
    const { counts, create } = countedClients()
    const { pool } = loginPool({ maxPerScope: 2, createClient: async () => create() })
    const a = scopeOf('a')
    for (const conn of await Promise.all([pool.acquire(a), pool.acquire(a)])) pool.release(conn)

    await pool.end()

    expect(counts).toEqual({ connects: 2, ended: 2 })
  })

  it('resolves end() only once a connection still being opened has been closed', async () => {
    const { counts, create } = countedClients()
    const { pool } = loginPool({
      createClient: async () => {
        await delay(200)
        return create()
      },
    })
    const refused = pool.acquire(scopeOf('a')).catch((err: unknown) => err)

    const ended = pool.end()

    expect(await refused).toBeInstanceOf(PoolsEndedError)
    expect(await pending(ended)).toBe('pending')
    await ended
    expect(counts).toEqual({ connects: 1, ended: 1 })
  })

  it('answers a failed attempt to a caller of the scope it was opened for, not to the first in line', async () => {
    // c holds its one connection and has a caller waiting; b's attempt is under way and will fail.
    // c's connection then breaks, so c's caller, first in line, waits for an attempt of its own.
    let cAttempts = 0
    const { pool } = loginPool({
      createClient: async (scope) => {
        if (scope.key === 'b') {
          await delay(150)
          throw new Error('b cannot log in')
        }
        if (cAttempts++ > 0) await delay(400)
        return clientOfTestServer()
      },
    })
    const [b, c] = [scopeOf('b'), scopeOf('c')]
    const held = await pool.acquire(c)
    const waitingC = pool.acquire(c)
    const waitingB = pool.acquire(b).catch((err: unknown) => err)
    pool.release(held, new Error('broken'))

    const failure = await waitingB

    expect(failure).toBeInstanceOf(ConnectError)
    expect((failure as Error).message).toBe('Could not open a connection for pool b')
    expect((failure as Error).cause).toEqual(new Error('b cannot log in'))
    pool.release(await waitingC)
  })

  it('opens no socket for an attempt given up on while its credentials were fetched', async () => {
    const { counts, create } = countedClients()
    let provided = false
    const { pool, failures } = loginPool({
      connectTimeoutMs: 100,
      createClient: async () => {
        await delay(300)
        provided = true
        return create()
      },
    })

    await expect(pool.acquire(scopeOf('a'))).rejects.toBeInstanceOf(ConnectError)
    await until(() => provided)
    await delay(100)

    expect(counts.connects).toBe(0)
    expect(failures).toHaveLength(1)
  })

  it('closes a connection that arrives after its attempt was given up on', async () => {
    const { counts, create } = countedClients()
    let verified = false
    const { pool } = loginPool({
      connectTimeoutMs: 300,
      createClient: async () => create(),
      verify: async () => {
        await delay(600)
        verified = true
      },
    })

    await expect(pool.acquire(scopeOf('a'))).rejects.toBeInstanceOf(ConnectError)
    // Its slot is still taken, and end() waits for it, until the late connection has closed (or
    // for connectTimeoutMs at most).
    const ended = pool.end()
    expect(await pending(ended)).toBe('pending')
    await until(() => verified)
    await until(() => counts.ended === 1)
    await ended

    expect([counts.connects, pool.total]).toEqual([1, 0])
  })

  it('sweeps an idle connection at its max lifetime, to the millisecond, though it has not been idle long', async () => {
    const { pool, closed } = loginPool()
    const conn = await pool.acquire(scopeOf('a'))
    time += 95_000
    pool.release(conn)
    time += 4_999
    expect(pool.sweep(time)).toBe(0)
    time += 1
    expect(pool.sweep(time)).toBe(1)
    expect([pool.total, closed()]).toEqual([0, 1])
  })

  it('hands no caller a connection released at its max lifetime, to the millisecond: it opens another', async () => {
    const { pool, closed } = loginPool()
    const a = scopeOf('a')
    const old = await pool.acquire(a)
    const waiting = pool.acquire(a)
    time += 100_000
    pool.release(old)
    const next = await waiting
    expect(next).not.toBe(old)
    expect(closed()).toBe(1)
    pool.release(next)
  })
})
