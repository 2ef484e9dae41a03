// Readiness when the call's deadline passes (or its signal aborts) while the connection it took is
// being checked: the connection goes back (destroyed: its check never ran), never stranded, and the
// caller gets the deadline's error.
import { DeadlineExceededError } from '../../lib'
import { endTestPools, testPools, uniqueTenant } from '../support/db'

afterEach(endTestPools)

describe('Readiness: a call aborted while its connection is checked', () => {
  it('gives the connection back, destroyed, and the next call gets a new one', async () => {
    const tenant = uniqueTenant('ra')
    // One connection; a short connect timeout, so that a stranded one fails the next call soon.
    const { pools } = testPools({ budget: 1, maxPerPool: 1, connectTimeoutMs: 2_000 })
    await pools.query(tenant, 'SELECT 1')
    // Freed in an earlier invocation: a callback's connection is pinged, after one poll phase.
    pools.invocationStarted()
    const abort = new AbortController()
    const call = pools.withClient(tenant, (c) => c.query('SELECT 1'), { signal: abort.signal })
    // The poll phase is two immediates: this one runs between them, before the ping is sent.
    setImmediate(() => abort.abort())
    await expect(call).rejects.toBeInstanceOf(DeadlineExceededError)
    expect(pools.stats().totals).toMatchObject({ active: 0 })
    expect((await pools.query(tenant, 'SELECT 1 AS one')).rows).toEqual([{ one: 1 }])
    expect(pools.stats().counters).toMatchObject({ connectionsOpened: 2, connectionsClosed: 1 })
  })
})
