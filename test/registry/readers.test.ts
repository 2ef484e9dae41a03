// Read-only scopes and their reader (readers.ts): without a reader, the writer in read-only
// sessions; a reader that cannot be reached is skipped for exactly readerRetryAfterMs while its
// calls go to the writer; a reader that is reachable but busy is not a reason to use the writer;
// and a read that loses the reader mid-statement is run again on the writer.

import { newCallMeasure, PoolExhaustedError, type TenantPools } from '../../lib'
import { createTenants, endTestPools, eventually, onServer, testPools, uniqueTenant } from '../support/db'
import { refusingAddress } from '../support/free-port'

afterEach(endTestPools)

const whoami = async (pools: TenantPools, id: string, measure = newCallMeasure()) =>
  (await pools.query<{ tenant: string }>(id, 'SELECT tenant FROM whoami', [], { readOnly: true, measure }))
    .rows

describe('Registry: read-only scopes and readers', () => {
  it('serves a read-only scope of a cluster without a reader from its writer, in read-only sessions', async () => {
    const a = uniqueTenant('ro')
    await createTenants([a])
    const { pools } = testPools()
    expect(await whoami(pools, a)).toEqual([{ tenant: a }])
    await expect(
      pools.query(a, "INSERT INTO whoami VALUES ('x')", [], { readOnly: true }),
    ).rejects.toMatchObject({
      code: '25006',
    })
    expect(pools.stats().pools.map((p) => [p.key, p.onReader])).toEqual([[`${a}/read-only`, false]])
    expect(pools.stats().counters.readerFallbacks).toBe(0)
  })

  it('makes a writer connection rebound to a read-only scope read-only too', async () => {
    const a = uniqueTenant('rb')
    await createTenants([a])
    const { pools } = testPools()
    await pools.query(a, 'SELECT 1')
    await expect(
      pools.query(a, "INSERT INTO whoami VALUES ('x')", [], { readOnly: true }),
    ).rejects.toMatchObject({ code: '25006' })
    // One connection: the read-only scope got the writing scope's, rebound, not a fresh one.
    expect(pools.stats().counters).toMatchObject({ connectionsOpened: 1, connectionsRebound: 1 })
  })

  it('skips an unreachable reader for readerRetryAfterMs, to the millisecond, sending its calls to the writer', async () => {
    const a = uniqueTenant('un')
    await createTenants([a])
    let now = 1_000_000
    const { pools } = testPools({
      clock: { now: () => now },
      readerRetryAfterMs: 5_000,
      clusters: { main: { reader: await refusingAddress() } },
    })
    const measure = newCallMeasure()
    expect(await whoami(pools, a, measure)).toEqual([{ tenant: a }])
    const tried = pools.stats().counters.connectFailures
    expect(tried).toBeGreaterThan(0)
    expect(measure.readerFallbacks).toBe(1)
    expect(pools.stats().clusters[0]?.readerSkipped).toBe(true)
    // While skipped, the reader is not tried again: each call goes straight to the writer.
    now += 4_999
    for (let i = 0; i < 3; i++) expect(await whoami(pools, a, measure)).toEqual([{ tenant: a }])
    expect(pools.stats().counters.connectFailures).toBe(tried)
    expect(measure.readerFallbacks).toBe(4)
    expect(pools.stats().counters.readerFallbacks).toBe(4)
    // Then it is tried again (and skipped again).
    now += 1
    expect(await whoami(pools, a, measure)).toEqual([{ tenant: a }])
    expect(pools.stats().counters.connectFailures).toBeGreaterThan(tried)
  })

  it('sends a withClient callback to the writer when the reader cannot be reached', async () => {
    const a = uniqueTenant('wr')
    await createTenants([a])
    const { pools } = testPools({
      clusters: { main: { reader: await refusingAddress() } },
    })
    const rows = await pools.withClient(a, async (c) => (await c.query('SELECT tenant FROM whoami')).rows, {
      readOnly: true,
    })
    expect(rows).toEqual([{ tenant: a }])
    expect(pools.stats().counters.readerFallbacks).toBe(1)
  })

  it('does not send a read to the writer because the reader’s scope is at its limit', async () => {
    const a = uniqueTenant('bz')
    await createTenants([a])
    const { pools } = testPools({
      maxPerPool: 1,
      connectTimeoutMs: 300,
      clusters: { main: { reader: { connectionString: process.env.TEST_REPLICA_URL as string } } },
    })
    expect(await eventually(async () => (await whoami(pools, a).catch(() => [])).length === 1)).toBe(true)
    let release = () => {}
    const held = pools.withClient(a, () => new Promise<void>((r) => (release = r)), { readOnly: true })
    await new Promise((r) => setTimeout(r, 50))
    await expect(whoami(pools, a)).rejects.toBeInstanceOf(PoolExhaustedError)
    release()
    await held
    expect(pools.stats().counters.readerFallbacks).toBe(0)
  })

  it('runs a read that lost the reader mid-statement again on the writer', async () => {
    const a = uniqueTenant('ms')
    await createTenants([a])
    const replica = process.env.TEST_REPLICA_URL as string
    const { pools, prefix } = testPools({ clusters: { main: { reader: { connectionString: replica } } } })
    expect(await eventually(async () => (await whoami(pools, a).catch(() => [])).length === 1)).toBe(true)
    const read = pools.query<{ tenant: string }>(a, 'SELECT tenant, pg_sleep(0.5) FROM whoami', [], {
      readOnly: true,
    })
    await new Promise((r) => setTimeout(r, 150))
    const killed = await onServer(replica, async (c) => {
      const { rows } = await c.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE $1 AND state = 'active'",
        [`${prefix}:%`],
      )
      return rows.length
    })
    expect(killed).toBe(1)
    expect((await read).rows.map((r) => r.tenant)).toEqual([a])
    expect(pools.stats().counters.readerFallbacks).toBe(1)
  })

  it.each([
    ['40001', 'a read the replica cancelled for a conflict with recovery', 1],
    ['57P03', 'a replica still starting up', 1],
    ['22012', 'an error of the statement itself', 0],
  ])('sends a read that met %s (%s) to the writer %i time(s)', async (code, _what, fallbacks) => {
    const a = uniqueTenant('sq')
    await createTenants([a])
    const replica = process.env.TEST_REPLICA_URL as string
    const { pools } = testPools({ clusters: { main: { reader: { connectionString: replica } } } })
    expect(await eventually(async () => (await whoami(pools, a).catch(() => [])).length === 1)).toBe(true)
    const before = pools.stats().counters.readerFallbacks
    // The writer raises it too: the call fails either way, and the counter says where it went.
    await expect(
      pools.query(a, `DO $$ BEGIN RAISE EXCEPTION 'raised' USING ERRCODE = '${code}'; END $$`, [], {
        readOnly: true,
      }),
    ).rejects.toMatchObject({ code })
    expect(pools.stats().counters.readerFallbacks - before).toBe(fallbacks)
  })
})
