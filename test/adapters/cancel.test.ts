// pg's cancel for a lent client, against the real server: the CancelRequest reaches the backend over
// TCP and over the server's Unix socket, is not sent once the holder has let go, and a server that
// cannot be reached is an answer of false, never an error. Then the TenantPgPool's control Client
// (what Kysely opens to cancel), for a connection its handle lent and then released.
import { existsSync } from 'node:fs'
import { Client, type PoolClient } from 'pg'
import { cancelControlClient, sendCancelRequest } from '../../lib/adapters/cancel'
import { databaseUrl, endTestPools, eventually, testPools, uniqueTenant, withAdmin } from '../support/db'
import { refusingAddress } from '../support/free-port'

interface Control {
  query(text: unknown): Promise<{ rows: unknown[] }>
}

const pidOf = (client: Client | PoolClient) => (client as unknown as { processID: number }).processID

const runningStatement = (pid: number) =>
  eventually(() =>
    withAdmin(async (admin) => {
      const { rows } = await admin.query(
        "SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND state = 'active' AND query LIKE '%pg_sleep%'",
        [pid],
      )
      return rows.length === 1
    }),
  )

// A client of its own on the test server: over TCP, or over the server's Unix socket.
async function connected(over: 'tcp' | 'unix'): Promise<Client> {
  let host: string | undefined
  if (over === 'unix') {
    const dirs = await withAdmin(async (admin) => (await admin.query('SHOW unix_socket_directories')).rows)
    host = String(dirs[0]?.unix_socket_directories).split(',')[0]?.trim()
    const socket = `${host}/.s.PGSQL.${new URL(databaseUrl()).port}`
    if (!existsSync(socket))
      throw new Error(`the test server's Unix socket is not on this machine: ${socket}`)
  }
  // pg lets a connection string's host win over the option: the URL's parts, the host replaced.
  const url = new URL(databaseUrl())
  const client = new Client({
    host: host ?? url.hostname,
    port: Number(url.port),
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    database: url.pathname.slice(1),
  })
  await client.connect()
  return client
}

afterEach(endTestPools)

describe('sendCancelRequest', () => {
  it.each(['tcp', 'unix'] as const)('cancels a running statement, over %s', async (over) => {
    const client = await connected(over)
    try {
      expect((client as unknown as { host: string }).host.startsWith('/')).toBe(over === 'unix')
      const running = client.query('SELECT pg_sleep(30)')
      // Awaited below; handled now, so that a failed check ends the client without a crash.
      running.catch(() => {})
      expect(await runningStatement(pidOf(client))).toBe(true)
      const stillHeld = jest.fn(() => true)
      expect(await sendCancelRequest(client as unknown as PoolClient, stillHeld)).toBe(true)
      expect(stillHeld).toHaveBeenCalledTimes(1)
      await expect(running).rejects.toMatchObject({ code: '57014' })
    } finally {
      await client.end()
    }
  })

  it('sends nothing when the holder has let go by the time its socket is open', async () => {
    const client = await connected('tcp')
    try {
      const running = client.query('SELECT pg_sleep(1) AS slept')
      // Awaited below; handled now, so that a failed check ends the client without a crash.
      running.catch(() => {})
      expect(await runningStatement(pidOf(client))).toBe(true)
      const stillHeld = jest.fn(() => false)
      expect(await sendCancelRequest(client as unknown as PoolClient, stillHeld)).toBe(false)
      expect(stillHeld).toHaveBeenCalledTimes(1)
      // Not cancelled: it runs to its end.
      await expect(running).resolves.toMatchObject({ rows: [{ slept: '' }] })
    } finally {
      await client.end()
    }
  })

  it('answers false, never an error, for a client with no backend key or a server that refuses', async () => {
    const stillHeld = jest.fn(() => true)
    const { port } = new URL(databaseUrl())
    // The server's own address, but no key to send: nothing is tried.
    for (const keyless of [
      { host: '127.0.0.1', port: Number(port), processID: 1 },
      { host: '127.0.0.1', port: Number(port), secretKey: 1 },
    ]) {
      expect(await sendCancelRequest(keyless as unknown as PoolClient, stillHeld)).toBe(false)
    }
    expect(stillHeld).not.toHaveBeenCalled()
    // A refused connection: an 'error' event that must not go unheard (it would be thrown).
    const refused = { ...(await refusingAddress()), processID: 1, secretKey: 1 }
    expect(await sendCancelRequest(refused as unknown as PoolClient, stillHeld)).toBe(false)
    expect(stillHeld).not.toHaveBeenCalled()
  })
})

describe("TenantPgPool's control Client", () => {
  it('says true for a statement it cancelled; false, and ends nothing, for a connection released meanwhile', async () => {
    const { pools } = testPools()
    const pool = pools.forTenant(uniqueTenant('cc')).asPgPool()
    // pg-pool's Client field, which @types/pg does not declare; Kysely reads it.
    const Control = (pool as unknown as { Client: new (o: unknown) => Control }).Client
    const client = await pool.connect()
    const pid = pidOf(client)
    const running = client.query('SELECT pg_sleep(30)')
    // Awaited below; handled now, so that a failed check ends the client without a crash.
    running.catch(() => {})
    expect(await runningStatement(pid)).toBe(true)
    // Another backend's pid: not this handle's to cancel, though it lends a connection.
    expect((await new Control({}).query(`select pg_cancel_backend(${pid + 1})`)).rows).toEqual([
      { pg_cancel_backend: false },
    ])
    expect((await new Control({}).query(`select pg_cancel_backend(${pid})`)).rows).toEqual([
      { pg_cancel_backend: true },
    ])
    await expect(running).rejects.toMatchObject({ code: '57014' })

    // Asked to end the session, then released by its holder before the request could go out: the
    // connection may serve another caller by now, and is left alone.
    const asking = new Control({}).query(`select pg_terminate_backend(${pid})`)
    client.release()
    expect((await asking).rows).toEqual([{ pg_terminate_backend: false }])
    const { rows } = await pool.query('SELECT pg_backend_pid() AS pid')
    expect(rows).toEqual([{ pid }])
    expect(pools.stats().counters).toMatchObject({ connectionsOpened: 1, connectionsClosed: 0 })
  })

  it('takes only a statement text: anything else is refused, even one that reads as one', async () => {
    const Control = cancelControlClient(new Set()) as unknown as new () => Control
    const refusal = new TypeError(
      "A TenantPgPool's Client only cancels a statement of a connection the pool lent: pg_cancel_backend(pid) or pg_terminate_backend(pid)",
    )
    await expect(new Control().query(['select pg_cancel_backend(1)'])).rejects.toThrow(refusal)
    await expect(new Control().query({ text: 'select pg_cancel_backend(1)' })).rejects.toThrow(refusal)
    expect((await new Control().query('select pg_cancel_backend(1)')).rows).toEqual([
      { pg_cancel_backend: false },
    ])
  })
})
