// Every socket-level loss of a statement's connection reaches the caller as ConnectionLostError,
// whatever Node called it: a reset and a clean end without a goodbye, cut for real by a proxy, and
// the codes a dead route gives (ETIMEDOUT, EHOSTUNREACH, EPIPE), reported by the socket as Node
// reports them. A write may have run; a read-only call cannot have changed anything.
import type { Socket } from 'node:net'
import type { ClientBase } from 'pg'
import { ConnectionLostError } from '../../lib'
import {
  createTenants,
  databaseUrl,
  endTestPools,
  eventually,
  testPools,
  uniqueTenant,
  withAdmin,
} from '../support/db'
import { type ResetProxy, resetProxy } from '../support/reset-proxy'

afterEach(endTestPools)

let proxy: ResetProxy
beforeEach(async () => {
  proxy = await resetProxy(new URL(databaseUrl()))
})
afterEach(() => proxy.close())

async function world() {
  const id = uniqueTenant('sl')
  await createTenants([id])
  // One connection: the socket seen in withClient is the one the statement then gets.
  const { pools } = testPools({ connectionString: proxy.url, budget: 1, maxPerPool: 1 })
  const socket = await pools.withClient(
    id,
    async (c: ClientBase) => (c as unknown as { connection: { stream: Socket } }).connection.stream,
  )
  // Tagged: a cut statement of an earlier case still sleeps on the server. (A binding riding ahead
  // of it shows in the same text.)
  const sleeper = `SELECT pg_sleep(5), '${id}' AS tag`
  const running = (readOnly: boolean) => pools.query(id, sleeper, [], { readOnly }).catch((e: unknown) => e)
  // Cut once the statement is on the server.
  const started = () =>
    eventually(async () =>
      withAdmin(async (a) => {
        const { rows } = await a.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE position($1 in query) > 0 AND state = 'active' AND pid <> pg_backend_pid()",
          [sleeper],
        )
        return rows[0]?.n === 1
      }),
    )
  return { pools, socket, running, started }
}

const withCode = (code: string) => Object.assign(new Error(`synthetic ${code}`), { code })

describe('Behaviour: a statement whose connection is lost at the socket', () => {
  it.each([
    ['a reset (ECONNRESET)', 'ECONNRESET', false],
    ['a reset, read-only', 'ECONNRESET', true],
    ['an end without a goodbye', undefined, false],
    ['an end without a goodbye, read-only', undefined, true],
  ])('reports %s as ConnectionLostError', async (_, code, readOnly) => {
    const { pools, running, started } = await world()
    const call = running(readOnly)
    expect(await started()).toBe(true)

    // Act
    proxy.cut(code === undefined ? 'eof' : 'reset')
    const err = await call

    // Assess
    expect(err).toBeInstanceOf(ConnectionLostError)
    expect((err as ConnectionLostError).mayHaveRun).toBe(!readOnly)
    if (code) expect(((err as Error).cause as { code?: string }).code).toBe(code)
    // And the next call gets a fresh connection.
    await expect(pools.query(uniqueTenant('sl'), 'SELECT 1')).resolves.toBeDefined()
  })

  it.each(['ETIMEDOUT', 'EHOSTUNREACH', 'EPIPE'])(
    'reports %s from the socket as ConnectionLostError that may have run',
    async (code) => {
      const { socket, running, started } = await world()
      const call = running(false)
      expect(await started()).toBe(true)
      socket.destroy(withCode(code))
      const err = await call
      expect(err).toBeInstanceOf(ConnectionLostError)
      expect((err as ConnectionLostError).mayHaveRun).toBe(true)
      expect(((err as Error).cause as { code?: string }).code).toBe(code)
    },
  )
})
