// The move lock (functions/admin/move-lock.ts): held through a long copy, freed as the move answers,
// and a mover that lost it leaves alone what the mover after it did.
import { moveTenant } from '../../../functions/admin/move'
import { migrateMaster, provisionTenant } from '../../../functions/admin/provision'
import { TenantCatalog, TenantPools, type TenantPoolsOptions } from '../../../lib'
import {
  clusterBUrl,
  databaseUrl,
  eventually,
  sleep,
  uniquePrefix,
  uniqueTenant,
  withAdmin,
} from '../../support/db'
import { memoryLog } from '../../support/memory-log'
import { answerOf, fingerprint, seedOrders, stateOf, unsettled } from '../../support/move-check'

const ORDERS = 2_000

describe('The move lock', () => {
  const open: TenantPools[] = []
  const environment = (options: TenantPoolsOptions = {}) => {
    const { log, entries } = memoryLog()
    const prefix = uniquePrefix()
    const pools = new TenantPools({
      logger: log,
      connectionString: databaseUrl(),
      clusters: { b: { connectionString: clusterBUrl() } },
      applicationNamePrefix: prefix,
      ...options,
    })
    open.push(pools)
    return { pools, catalog: new TenantCatalog(() => pools), log, entries, prefix }
  }
  afterEach(async () => {
    await Promise.all(open.splice(0).map((p) => p.end()))
  })

  async function seededTenant() {
    const id = uniqueTenant('lk')
    const { pools } = environment()
    await migrateMaster(pools)
    await provisionTenant(pools, id, 'main')
    await seedOrders(id, ORDERS)
    const expected = await fingerprint('main', id)
    if (!expected) throw new Error('the seeded tenant has no schema')
    return { id, expected }
  }

  it('is held through a move longer than the idle_session_timeout of the registry', async () => {
    const { id, expected } = await seededTenant()
    // The lock's session sits idle while the fence stands (and, for real tenants, while the copy runs).
    const e = environment({ idleSessionTimeoutMs: 300 })
    const answer = await answerOf(
      moveTenant(e.pools, e.catalog, id, 'b', e.log, {
        onStep: async (step) => {
          if (step === 'fence') await sleep(900)
        },
      }),
    )
    expect({ answer, log: e.entries }).toMatchObject({ answer: { ok: true, report: { outcome: 'moved' } } })
    expect(unsettled(await stateOf(id), expected)).toEqual([])
  })

  it('is freed as the move answers, not when its connection is next used', async () => {
    const { id, expected } = await seededTenant()
    const there = environment()
    const back = environment()
    await expect(moveTenant(there.pools, there.catalog, id, 'b', there.log)).resolves.toMatchObject({
      outcome: 'moved',
    })
    await expect(moveTenant(back.pools, back.catalog, id, 'main', back.log)).resolves.toMatchObject({
      outcome: 'moved',
      from: 'b',
      to: 'main',
    })
    expect(unsettled(await stateOf(id), expected)).toEqual([])
  })

  it('lost mid-move: the mover leaves alone what the one that took over did, and says so', async () => {
    const { id, expected } = await seededTenant()
    const first = environment()
    const second = environment()
    let takeOver: Awaited<ReturnType<typeof answerOf>> | undefined
    const lost = answerOf(
      moveTenant(first.pools, first.catalog, id, 'b', first.log, {
        onStep: async (step) => {
          if (step !== 'fence') return
          // Its lock's session ends (as a server restart or an operator would end it) ...
          const lockSession = `${first.prefix}:$master`
          await withAdmin((c) =>
            c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [
              lockSession,
            ]),
          )
          await eventually(() =>
            withAdmin(async (c) => {
              const { rows } = await c.query('SELECT 1 FROM pg_stat_activity WHERE application_name = $1', [
                lockSession,
              ])
              return rows.length === 0
            }),
          )
          // ... and a post of the same move takes it over and finishes it before this one goes on.
          takeOver = await answerOf(moveTenant(second.pools, second.catalog, id, 'b', second.log))
        },
      }),
    )
    const answer = await lost
    const state = await stateOf(id)
    expect(state.catalog?.cluster).toBe('b')
    expect(unsettled(state, expected)).toEqual([])
    expect(takeOver).toMatchObject({ ok: true, report: { outcome: 'resumed', from: 'main', to: 'b' } })
    // Not "stays on main": it could not tell, and changed nothing more.
    expect(answer).toMatchObject({ ok: false, status: 503, code: 'MOVE_INCOMPLETE' })
  })
})
