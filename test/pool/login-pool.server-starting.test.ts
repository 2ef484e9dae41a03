// A server that is starting up (57P03 cannot_connect_now, as after a failover or a restart) refuses
// logins for a while. The pool retries with full-jitter exponential backoff (25 ms doubling, capped
// at 400 ms) within the connect timeout, then serves the call. A proxy in front of the real server
// answers the first logins with that FATAL, then passes the rest through.
import { once } from 'node:events'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { ConnectError } from '../../lib'
import { createTenants, databaseUrl, endTestPools, testPools, uniqueTenant } from '../support/db'

// An ErrorResponse, as PostgreSQL sends it before closing: severity, SQLSTATE, message.
function errorResponse(code: string, message: string): Buffer {
  const fields = Buffer.concat(
    [
      ['S', 'FATAL'],
      ['V', 'FATAL'],
      ['C', code],
      ['M', message],
    ].map(([k, v]) => Buffer.from(`${k}${v}\0`)),
  )
  const body = Buffer.concat([fields, Buffer.from([0])])
  const head = Buffer.alloc(5)
  head.write('E', 0)
  head.writeInt32BE(body.length + 4, 1)
  return Buffer.concat([head, body])
}

/** Refuses the first `refusals` logins with `code` (57P03: starting up), then proxies to the real server. */
async function startingServer(
  refusals: number,
  code = '57P03',
): Promise<{ port: number; attempts: number[]; close(): Promise<void> }> {
  const target = new URL(databaseUrl())
  const attempts: number[] = []
  const sockets = new Set<Socket>()
  const server: Server = createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    attempts.push(performance.now())
    if (attempts.length <= refusals) {
      // Read the startup packet, answer as a starting server does, and close.
      socket.once('data', () => socket.end(errorResponse(code, 'the database system is starting up')))
      socket.on('error', () => {})
      return
    }
    const upstream = connect(Number(target.port), target.hostname)
    sockets.add(upstream)
    upstream.on('close', () => sockets.delete(upstream))
    socket.pipe(upstream).pipe(socket)
    socket.on('error', () => upstream.destroy())
    upstream.on('error', () => socket.destroy())
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  return {
    port,
    attempts,
    close: async () => {
      for (const s of sockets) s.destroy()
      server.close()
      await once(server, 'close')
    },
  }
}

describe('Behaviour: a server starting up (57P03)', () => {
  afterEach(endTestPools)

  it('retries the login with capped, doubling backoff, then serves the call', async () => {
    const tenant = uniqueTenant('st')
    await createTenants([tenant])
    const server = await startingServer(5)
    try {
      const { pools } = testPools({ host: '127.0.0.1', port: server.port, connectTimeoutMs: 3_000 })
      const { rows } = await pools.query<{ tenant: string }>(tenant, 'SELECT tenant FROM whoami')
      expect(rows).toEqual([{ tenant }])
      expect(server.attempts).toHaveLength(6)
      expect(pools.stats().counters).toMatchObject({ serverFullRetries: 5, connectFailures: 0 })
      // Each wait is drawn below 25 ms × 2^n, capped at 400 ms. The bound is loose (150 ms for the
      // login and a busy machine): it tells a doubling, capped backoff from a fixed or growing one.
      const gaps = server.attempts.slice(1).map((t, i) => t - (server.attempts[i] as number))
      for (const [n, gap] of gaps.entries()) expect(gap).toBeLessThan(Math.min(400, 25 * 2 ** n) + 150)
    } finally {
      await server.close()
    }
  })

  it('gives up within the connect timeout when the server never comes up, having kept trying', async () => {
    const server = await startingServer(Number.POSITIVE_INFINITY)
    try {
      const { pools } = testPools({ host: '127.0.0.1', port: server.port, connectTimeoutMs: 800 })
      const started = performance.now()
      await expect(pools.query(uniqueTenant('nv'), 'SELECT 1')).rejects.toBeInstanceOf(ConnectError)
      // Bounded by the connect timeout (generously: a busy machine), not by the refusals.
      expect(performance.now() - started).toBeLessThan(800 + 1_500)
      // Backoff, not a tight loop: capped waits of 400 ms leave room for a handful of attempts.
      expect(server.attempts.length).toBeGreaterThanOrEqual(3)
      expect(server.attempts.length).toBeLessThan(40)
    } finally {
      await server.close()
    }
  })
})

// A connection being opened when the server ends its backend: a purge of the application's sessions
// while this environment was frozen mid-login, a failover. The next backend is a new one.
describe('Behaviour: a backend ended while it logs in (57P01)', () => {
  afterEach(endTestPools)

  it('is retried once on a fresh connection, and the caller is served', async () => {
    const tenant = uniqueTenant('kl')
    await createTenants([tenant])
    const server = await startingServer(1, '57P01')
    try {
      const { pools } = testPools({ host: '127.0.0.1', port: server.port })
      const { rows } = await pools.query<{ tenant: string }>(tenant, 'SELECT tenant FROM whoami')
      expect(rows).toEqual([{ tenant }])
      expect(server.attempts).toHaveLength(2)
      expect(pools.stats().counters).toMatchObject({ serverKills: 1, connectionsLost: 1, connectFailures: 0 })
    } finally {
      await server.close()
    }
  })

  it('fails the caller with ConnectError when the fresh one is ended too: once, not a loop', async () => {
    const server = await startingServer(2, '57P01')
    try {
      const { pools } = testPools({ host: '127.0.0.1', port: server.port })
      const failure = await pools.query(uniqueTenant('kl'), 'SELECT 1').catch((err: unknown) => err)
      expect(failure).toBeInstanceOf(ConnectError)
      expect((failure as ConnectError).cause).toMatchObject({ code: '57P01' })
      expect(server.attempts).toHaveLength(2)
    } finally {
      await server.close()
    }
  })
})
