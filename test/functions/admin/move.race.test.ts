// Two overlapping moves of one tenant to the same cluster (a client's retry of a slow move, two
// environments): whatever the offset between them, the tenant ends on exactly one cluster with all
// its rows, unfenced, and both answers tell the truth.
import { moveTenant } from '../../../functions/admin/move'
import { migrateMaster, provisionTenant } from '../../../functions/admin/provision'
import { TenantCatalog, TenantPools } from '../../../lib'
import { clusterBUrl, databaseUrl, sleep, uniqueTenant } from '../../support/db'
import { figure } from '../../support/figures'
import { memoryLog } from '../../support/memory-log'
import {
  type Answer,
  answerOf,
  fingerprint,
  seedOrders,
  stateOf,
  unsettled,
  untrue,
} from '../../support/move-check'

const RUNS = 20
const MAX_OFFSET_MS = 200
// Enough rows that one move outlasts the smaller offsets, and not all of them.
const ORDERS = 3_000

const environment = () => {
  const { log, entries } = memoryLog()
  const pools = new TenantPools({
    logger: log,
    connectionString: databaseUrl(),
    clusters: { b: { connectionString: clusterBUrl() } },
  })
  return { pools, catalog: new TenantCatalog(() => pools), log, entries }
}

const summary = (a: Answer) => (a.ok ? `200 ${a.report.outcome}` : `${a.status} ${a.code}`)

describe('Two moves of one tenant raced', () => {
  const envs = [environment(), environment()] as const
  afterAll(async () => {
    await Promise.all(envs.map((e) => e.pools.end()))
  })

  it(`leave it whole on one cluster and answer truly, at offsets from 0 to ${MAX_OFFSET_MS} ms`, async () => {
    await migrateMaster(envs[0].pools)
    const seen = new Map<string, number>()
    const problems: string[] = []
    for (let run = 0; run < RUNS; run++) {
      const offset = Math.round((run * MAX_OFFSET_MS) / (RUNS - 1))
      const id = uniqueTenant('race')
      await provisionTenant(envs[0].pools, id, 'main')
      await seedOrders(id, ORDERS)
      const expected = await fingerprint('main', id)
      if (!expected) throw new Error('the seeded tenant has no schema')
      // The first move from either environment in turn.
      const [first, second] = run % 2 === 0 ? envs : [envs[1], envs[0]]
      const a = answerOf(moveTenant(first.pools, first.catalog, id, 'b', first.log))
      await sleep(offset)
      const b = answerOf(moveTenant(second.pools, second.catalog, id, 'b', second.log))
      const answers = await Promise.all([a, b])
      const state = await stateOf(id)
      const placed = state.catalog?.cluster
      const wrong = [
        ...unsettled(state, expected),
        ...answers.flatMap((x) => untrue(x, 'main', 'b', placed) ?? []),
      ]
      if (!answers.some((x) => x.ok && x.report.to === placed)) wrong.push('no 200 naming the final cluster')
      const key = answers.map(summary).join(' + ')
      seen.set(key, (seen.get(key) ?? 0) + 1)
      if (wrong.length > 0) problems.push(`offset ${offset} ms (${key}): ${wrong.join('; ')}`)
    }
    // The figures of the run, for the record (docs/clusters.md's and the report's).
    figure(`move race, ${RUNS} runs: ${JSON.stringify(Object.fromEntries(seen))}\n`)
    expect(problems).toEqual([])
  })
})
