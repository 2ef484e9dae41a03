// A move killed at each of its steps (a Lambda timeout: the process dies, the kernel closes its
// sockets), then posted again: to the same cluster it resumes (or finishes) the move, to the cluster
// the tenant came from it rolls it back (or, once flipped, refuses and changes nothing). Either way
// the tenant ends whole on exactly one cluster, unfenced, and the answers tell the truth.
import { spawn } from 'node:child_process'
import { type MoveStep, moveTenant } from '../../../functions/admin/move'
import { migrateMaster, provisionTenant } from '../../../functions/admin/provision'
import { TenantCatalog, TenantPools } from '../../../lib'
import { clusterBUrl, databaseUrl, eventually, onServer, uniquePrefix, uniqueTenant } from '../../support/db'
import { memoryLog } from '../../support/memory-log'
import {
  answerOf,
  clusterUrls,
  type Fingerprint,
  fingerprint,
  seedOrders,
  stateOf,
  unsettled,
  untrue,
} from '../../support/move-check'

const STEPS: MoveStep[] = ['claim', 'capture', 'copy', 'fence', 'verify', 'flip', 'drop']
const FLIPPED = new Set<MoveStep>(['flip', 'drop'])
const ORDERS = 2_000

/** Runs the move in a worker killed at `step`; resolves with how it ended, and what it printed. */
function killedMove(id: string, prefix: string, step: MoveStep) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/move-worker.ts'], {
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl(),
      TEST_CLUSTER_B_URL: clusterBUrl(),
      MOVE_TENANT: id,
      MOVE_TARGET: 'b',
      MOVE_KILL_AT: step,
      MOVE_APP_PREFIX: prefix,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout.on('data', (d) => {
    output += d
  })
  child.stderr.on('data', (d) => {
    output += d
  })
  return new Promise<{ signal: NodeJS.Signals | null; output: string }>((resolve) =>
    child.on('exit', (_code, signal) => resolve({ signal, output })),
  )
}

/** The worker's sessions on both clusters: the server has noticed the kill once they are gone. */
const backendsOf = async (prefix: string): Promise<number> => {
  let n = 0
  for (const url of Object.values(clusterUrls)) {
    n += await onServer(url(), async (c) => {
      const { rows } = await c.query<{ n: string }>(
        'SELECT count(*) AS n FROM pg_stat_activity WHERE application_name LIKE $1',
        [`${prefix}:%`],
      )
      return Number(rows[0]?.n)
    })
  }
  return n
}

describe('A move killed at each step, then posted again', () => {
  const { log, entries } = memoryLog()
  const pools = new TenantPools({
    logger: log,
    connectionString: databaseUrl(),
    clusters: { b: { connectionString: clusterBUrl() } },
  })
  const catalog = new TenantCatalog(() => pools)
  const move = (id: string, target: string) => answerOf(moveTenant(pools, catalog, id, target, log))

  beforeAll(() => migrateMaster(pools))
  afterAll(() => pools.end())

  // A tenant with rows, moved towards b by a worker killed at `step`; then what the kill left.
  async function interrupted(step: MoveStep): Promise<{ id: string; expected: Fingerprint }> {
    const id = uniqueTenant('kill')
    await provisionTenant(pools, id, 'main')
    await seedOrders(id, ORDERS)
    const expected = await fingerprint('main', id)
    if (!expected) throw new Error('the seeded tenant has no schema')
    const prefix = uniquePrefix()
    const { signal, output } = await killedMove(id, prefix, step)
    if (signal !== 'SIGKILL') throw new Error(`the worker was not killed at ${step}: ${output}`)
    expect(await eventually(async () => (await backendsOf(prefix)) === 0, 10_000)).toBe(true)
    // The kill came where it was meant to: the catalog's phase, the fence, the copies.
    const left = await stateOf(id)
    if (FLIPPED.has(step)) {
      expect(left.catalog).toMatchObject({ cluster: 'b', moving_to: null, old_copy_on: 'main' })
      expect(left.copies.b).toEqual(expected)
      expect(left.copies.main === undefined).toBe(step === 'drop')
    } else {
      expect(left.catalog).toMatchObject({ cluster: 'main', moving_to: 'b', old_copy_on: null })
      expect((left.fences.main ?? 0) > 0).toBe(step !== 'claim')
      expect(left.copies.main).toEqual(expected)
    }
    return { id, expected }
  }

  it.each(STEPS)('killed at %s, posted again to the same cluster: resumed', async (step) => {
    const { id, expected } = await interrupted(step)
    const answer = await move(id, 'b')
    const state = await stateOf(id)
    expect({ answer, wrong: unsettled(state, expected), log: entries.splice(0) }).toMatchObject({
      answer: { ok: true, report: { outcome: 'resumed', from: 'main', to: 'b', oldCopyRemoved: true } },
      wrong: [],
    })
    expect(untrue(answer, 'main', 'b', state.catalog?.cluster)).toBeUndefined()
  })

  it.each(STEPS)('killed at %s, posted again to the cluster it came from', async (step) => {
    const { id, expected } = await interrupted(step)
    const before = await stateOf(id)
    const answer = await move(id, 'main')
    if (FLIPPED.has(step)) {
      // Flipped: the tenant lives on b. Refused, nothing changed; finishing the move settles it.
      expect(answer).toMatchObject({ ok: false, status: 409, code: 'MOVE_IN_PROGRESS' })
      expect(await stateOf(id)).toEqual(before)
      const finished = await move(id, 'b')
      expect(finished).toMatchObject({ ok: true, report: { outcome: 'resumed', from: 'main', to: 'b' } })
    } else {
      expect(answer).toMatchObject({
        ok: true,
        report: { outcome: 'rolled-back', from: 'main', to: 'main', abandoned: 'b' },
      })
    }
    const state = await stateOf(id)
    expect({ wrong: unsettled(state, expected), log: entries.splice(0) }).toMatchObject({ wrong: [] })
    expect(untrue(answer, 'main', 'main', state.catalog?.cluster)).toBeUndefined()
    expect(state.catalog?.cluster).toBe(FLIPPED.has(step) ? 'b' : 'main')
  })
})
