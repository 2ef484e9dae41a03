// The maintenance job on the real database. Each test has its own master schema and tenant schema
// prefix, so that the catalog it walks holds its tenants only.
import { randomBytes } from 'node:crypto'
import { Client } from 'pg'
import { migrateMaster, provisionTenant } from '../../../../functions/admin/provision'
import {
  type ClaimCursor,
  claimNext,
  currentPass,
  finish,
  prunePasses,
} from '../../../../functions/jobs/maintenance/progress'
import {
  type MaintenanceOptions,
  type MaintenanceSummary,
  runMaintenance,
} from '../../../../functions/jobs/maintenance/run'
import type { Migration, TenantPools } from '../../../../lib'
import { tenantMigrations } from '../../../../migrations'
import { databaseUrl, endTestPools, sampleBackends, sleep, testPools, withAdmin } from '../../../support/db'

const silent = { debug() {}, info() {}, warn() {}, error() {} }

// Fails, with division_by_zero, in a schema whose name contains "broken"; a no-op elsewhere.
const brokenForOne: Migration = {
  version: '0003_broken_for_one',
  sql: `DO $$ BEGIN
          IF current_schema() LIKE '%broken%' THEN RAISE EXCEPTION 'broken migration' USING ERRCODE = '22012'; END IF;
        END $$`,
}
const migrations = [...tenantMigrations, brokenForOne]

interface World {
  pools: TenantPools
  prefix: string
  master: string
  schemaPrefix: string
  /** A registry for the job, as a Lambda environment would build it. */
  jobPools: (concurrency?: number) => TenantPools
  /** One job run on its own registry (unless `pools` is given), with time to spare unless told otherwise. */
  run: (options?: Partial<MaintenanceOptions>) => Promise<MaintenanceSummary>
}

async function world(tenants: string[]): Promise<World> {
  const tag = randomBytes(3).toString('hex')
  const master = `maint_${tag}`
  const schemaPrefix = `mt${tag}_`
  const base = { masterSchema: master, schemaFor: (id: string) => `${schemaPrefix}${id}` }
  const { pools, prefix } = testPools(base)
  await migrateMaster(pools)
  for (const id of tenants) await provisionTenant(pools, id)
  const jobPools = (concurrency = 4) =>
    testPools({
      ...base,
      applicationNamePrefix: `${prefix}-job`,
      budget: concurrency + 1,
      maxPerPool: 1,
      maxPools: concurrency + 1,
    }).pools
  const run = (options: Partial<MaintenanceOptions> = {}) =>
    runMaintenance({
      pools: options.pools ?? jobPools(options.concurrency),
      migrations,
      remainingMs: () => 600_000,
      logger: silent,
      applicationNamePrefix: prefix,
      ...options,
    })
  return { pools, prefix, master, schemaPrefix, jobPools, run }
}

/** A time budget that lets `n` tenants start, then reports the invocation as nearly over. */
const budgetFor = (n: number) => {
  let left = n
  return () => (left-- > 0 ? 600_000 : 0)
}

const progressOf = async (w: World, pass: number) =>
  withAdmin(async (admin) => {
    const { rows } = await admin.query<{
      tenant_id: string
      status: string
      error_code: string | null
      runner: string
    }>(
      `SELECT tenant_id, status, error_code, runner FROM ${w.master}.maintenance_progress WHERE pass_id = $1 ORDER BY tenant_id`,
      [pass],
    )
    return rows
  })

// Whether a backend still exists at the server (pg_terminate_backend is asynchronous: wait for it).
async function backendAlive(pid: number | undefined): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    const { rowCount } = await withAdmin((admin) =>
      admin.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid]),
    )
    if (!rowCount) return false
    await sleep(20)
  }
  return true
}

describe('Job: maintenance', () => {
  afterEach(endTestPools)

  it('covers 200 tenants exactly once per pass across time-limited runs, and reports and retries the broken one', async () => {
    // Prepare: 199 healthy tenants and one whose next migration fails
    const ids = [...Array.from({ length: 199 }, (_, i) => `t${String(i).padStart(3, '0')}`), 'zz_broken']
    const w = await world(ids)
    const job = w.jobPools()
    const run = (budget: number) =>
      w.run({ pools: job, remainingMs: budgetFor(budget), safetyMarginMs: 1_000 })

    // Act: runs of at most 60 tenants each, with a tenant added after the first
    const runs: MaintenanceSummary[] = [await run(60)]
    await provisionTenant(w.pools, 'added_mid_pass')
    while (!runs[runs.length - 1]?.passComplete && runs.length < 10) runs.push(await run(60))

    // Assess: one pass, several runs, every tenant once
    expect(runs.length).toBeGreaterThanOrEqual(4)
    expect(new Set(runs.map((r) => r.pass)).size).toBe(1)
    expect(runs.slice(0, -1).every((r) => !r.passComplete && r.remaining > 0)).toBe(true)
    const rows = await progressOf(w, runs[0]?.pass as number)
    expect(rows).toHaveLength(201)
    expect(rows.filter((r) => r.status === 'done')).toHaveLength(200)
    expect(rows.filter((r) => r.status === 'failed')).toEqual([
      expect.objectContaining({ tenant_id: 'zz_broken', error_code: '22012' }),
    ])
    expect(runs.reduce((n, r) => n + r.processed, 0)).toBe(200)
    expect(runs.flatMap((r) => r.failures)).toEqual([{ tenantId: 'zz_broken', code: '22012' }])

    // A migration is recorded only when it committed
    const applied = await withAdmin(async (admin) => {
      const ok = await admin.query(
        `SELECT 1 FROM ${w.schemaPrefix}t000.schema_migrations WHERE version = $1`,
        [brokenForOne.version],
      )
      const broken = await admin.query(
        `SELECT 1 FROM ${w.schemaPrefix}zz_broken.schema_migrations WHERE version = $1`,
        [brokenForOne.version],
      )
      return [ok.rowCount, broken.rowCount]
    })
    expect(applied).toEqual([1, 0])

    // The next pass retries the broken tenant (and fails it again, recorded again)
    const next = await run(1_000)
    expect(next.pass).toBe((runs[0]?.pass as number) + 1)
    expect(next.failures).toEqual([{ tenantId: 'zz_broken', code: '22012' }])
    expect(next).toMatchObject({ processed: 200, passComplete: true })
  }, 180_000)

  it('never holds more connections than its concurrency plus the master pool’s', async () => {
    const ids = Array.from({ length: 40 }, (_, i) => `c${i}`)
    const w = await world(ids)
    const sampler = sampleBackends(`${w.prefix}-job`)

    const summary = await w.run({ concurrency: 4 })
    const peak = await sampler.stop()

    expect(summary).toMatchObject({ processed: 40, failed: 0, passComplete: true })
    expect(peak).toBeGreaterThan(1)
    expect(peak).toBeLessThanOrEqual(5)
  }, 120_000)

  it('rebinds its connections from tenant to tenant instead of opening one per tenant', async () => {
    // Prepare
    const ids = Array.from({ length: 30 }, (_, i) => `r${i}`)
    const w = await world(ids)
    const job = w.jobPools(2)

    // Act
    const summary = await w.run({ pools: job, concurrency: 2 })

    // Assess: a connection per worker and the master's, whatever the number of tenants
    expect(summary).toMatchObject({ processed: 30, failed: 0, passComplete: true })
    const { connectionsOpened, connectionsRebound } = job.stats().counters
    expect(connectionsOpened).toBeLessThanOrEqual(3)
    expect(connectionsRebound).toBeGreaterThanOrEqual(28)
  }, 120_000)

  it('two runs started together never work on the same tenant', async () => {
    const ids = Array.from({ length: 60 }, (_, i) => `o${i}`)
    const w = await world(ids)
    const run = (runner: string) => w.run({ concurrency: 3, runner })

    const [a, b] = await Promise.all([run('runner-a'), run('runner-b')])

    expect(a.pass).toBe(b.pass)
    const rows = await progressOf(w, a.pass)
    expect(rows).toHaveLength(60)
    expect(new Set(rows.map((r) => r.tenant_id)).size).toBe(60)
    expect(a.processed + b.processed).toBe(60)
    expect(a.processed).toBeGreaterThan(0)
    expect(b.processed).toBeGreaterThan(0)
    expect(rows.filter((r) => r.runner === 'runner-a')).toHaveLength(a.processed)
  }, 120_000)

  it('reaps only this application’s idle sessions of its roles, never others or its own', async () => {
    // Prepare: one zombie, and five sessions that must survive
    const w = await world([])
    // The setup registry's own idle master connection would be a legitimate zombie: close it.
    await w.pools.end()
    const otherRole = `reap_other_${randomBytes(3).toString('hex')}`
    await withAdmin((admin) => admin.query(`CREATE ROLE ${otherRole} LOGIN PASSWORD 'other-pw'`))
    const url = new URL(databaseUrl())
    const connect = async (applicationName: string, user?: { name: string; password: string }) => {
      const c = new Client({
        host: url.hostname,
        port: Number(url.port),
        database: url.pathname.slice(1),
        user: user?.name ?? decodeURIComponent(url.username),
        password: user?.password ?? decodeURIComponent(url.password),
        application_name: applicationName,
      })
      c.on('error', () => {})
      await c.connect()
      return c
    }
    const zombie = await connect(`${w.prefix}:acme`)
    const zombiePid = (await zombie.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid
    const survivors = [
      await connect('another-app:acme'),
      await connect(`${w.prefix}x:acme`),
      await connect(`${w.prefix}-job:acme`),
      await connect(`${w.prefix}:acme`, { name: otherRole, password: 'other-pw' }),
    ]
    const busy = await connect(`${w.prefix}:busy`)
    await sleep(400)
    const busyQuery = busy.query('SELECT pg_sleep(1.5)').then(
      () => 'finished',
      (e: Error) => e,
    )

    // Act
    const summary = await w.run({ reapIdleMs: 200 })

    // Assess
    expect(summary.zombiesReaped).toBe(1)
    // The zombie's backend is gone at the server (not merely unreachable from here).
    expect(await backendAlive(zombiePid)).toBe(false)
    for (const s of survivors)
      await expect(s.query('SELECT 1 AS ok')).resolves.toMatchObject({ rows: [{ ok: 1 }] })
    await expect(busyQuery).resolves.toBe('finished')
    await Promise.all([...survivors, busy].map((c) => c.end()))
  }, 60_000)

  it('keeps a pass open while a lease is live, even on a tenant suspended since, and never double-books it', async () => {
    // Prepare: runner B holds a lease on a1, which is then suspended
    const w = await world(['a1', 'b1'])
    const master = w.pools.master
    const pass = await currentPass(master)
    expect(await claimNext(master, pass, 'B', 60_000)).toBe('a1')
    await master.query(`UPDATE tenants SET status = 'suspended' WHERE id = 'a1'`)

    // Act + Assess: A does b1, but the pass stays open for B's lease
    expect(await w.run()).toMatchObject({ processed: 1, passComplete: false })
    // a1 comes back while B still works on it: nobody else takes it
    await master.query(`UPDATE tenants SET status = 'active' WHERE id = 'a1'`)
    expect(await w.run()).toMatchObject({ pass, processed: 0, passComplete: false })
    // B finishes; the next run closes the pass
    expect(await finish(master, pass, 'a1', 'B', { ok: true })).toBe(true)
    expect(await w.run()).toMatchObject({ pass, processed: 0, passComplete: true })
  }, 60_000)

  it('keeps the last passesKept closed passes when a pass closes, and deletes older ones with their rows', async () => {
    // Prepare
    const w = await world(['p1', 'p2'])
    const job = w.jobPools()
    const history = async () =>
      withAdmin(async (admin) => {
        const passes = await admin.query<{ id: string }>(
          `SELECT id FROM ${w.master}.maintenance_passes ORDER BY id`,
        )
        const rows = await admin.query<{ n: string }>(
          `SELECT count(*) AS n FROM ${w.master}.maintenance_progress`,
        )
        return { passes: passes.rows.map((r) => Number(r.id)), rows: Number(rows.rows[0]?.n) }
      })

    // Act: five passes, each done in one run
    const summaries: MaintenanceSummary[] = []
    for (let i = 0; i < 5; i++) summaries.push(await w.run({ pools: job, passesKept: 2 }))

    // Assess: each run closed its pass; from the third on, the pass before the last two went
    expect(summaries.map((s) => [s.processed, s.passComplete])).toEqual(Array(5).fill([2, true]))
    expect(summaries.map((s) => s.progressPruned)).toEqual([0, 0, 2, 2, 2])
    const passes = summaries.map((s) => s.pass)
    expect(await history()).toEqual({ passes: passes.slice(3), rows: 4 })
    // What the kept passes recorded is all there
    for (const pass of passes.slice(3))
      expect((await progressOf(w, pass)).map((r) => [r.tenant_id, r.status])).toEqual([
        ['p1', 'done'],
        ['p2', 'done'],
      ])
  }, 60_000)

  it('prunes no row whose lease is live, and no open pass', async () => {
    // Prepare: pass 1 closed under a slow runner still holding x1; y1 done in it; pass 2 closed, pass 3 open
    const w = await world(['x1', 'y1'])
    const master = w.pools.master
    const first = await currentPass(master)
    expect(await claimNext(master, first, 'slow', 60_000)).toBe('x1')
    expect(await claimNext(master, first, 'A', 60_000)).toBe('y1')
    expect(await finish(master, first, 'y1', 'A', { ok: true })).toBe(true)
    await master.query('UPDATE maintenance_passes SET finished_at = now() WHERE id = $1', [first])
    const second = await currentPass(master)
    await master.query('UPDATE maintenance_passes SET finished_at = now() WHERE id = $1', [second])
    const third = await currentPass(master)
    const passes = async () =>
      (await master.query<{ id: string }>('SELECT id FROM maintenance_passes ORDER BY id')).rows.map((r) =>
        Number(r.id),
      )

    // Act + Assess: only the last closed pass is kept, but pass 1 keeps its live lease's row
    expect(await prunePasses(master, 1)).toBe(1)
    expect((await progressOf(w, first)).map((r) => [r.tenant_id, r.status, r.runner])).toEqual([
      ['x1', 'running', 'slow'],
    ])
    expect(await passes()).toEqual([first, second, third])
    // Once the lease has expired, the row and its pass go; the open pass stays whatever `kept` says
    await master.query(`UPDATE maintenance_progress SET lease_until = now() - interval '1 second'`)
    expect(await prunePasses(master, 1)).toBe(1)
    expect(await passes()).toEqual([second, third])
  }, 30_000)

  it.each([0, 1.5, -1])('refuses passesKept %p', async (passesKept) => {
    const w = await world([])
    await expect(w.run({ passesKept })).rejects.toThrow(/passesKept must be an integer >= 1/)
  })

  it('stops looking for work when the only tenant left is leased in an older pass', async () => {
    // Prepare: x1 leased by a slow runner in pass 1, which was then closed; pass 2 opens
    const w = await world(['x1'])
    const master = w.pools.master
    const first = await currentPass(master)
    expect(await claimNext(master, first, 'slow', 60_000)).toBe('x1')
    await master.query('UPDATE maintenance_passes SET finished_at = now() WHERE id = $1', [first])
    const second = await currentPass(master)
    expect(second).toBeGreaterThan(first)

    // Act + Assess: nothing claimable, so the claim returns at once instead of spinning, and a run
    // (with a deadline, as the handler gives it) ends having done nothing
    expect(await claimNext(master, second, 'A', 60_000)).toBeUndefined()
    const summary = await w.run({ deadline: Date.now() + 1_000 })
    expect(summary).toMatchObject({ pass: second, processed: 0, failed: 0, passComplete: false })
    // With the time already up, a claim does not even try
    expect(await claimNext(master, second, 'A', 60_000, { inTime: () => false })).toBeUndefined()
  }, 30_000)

  it('claims on after its cursor, then goes back for a tenant before it: one added mid-pass, one whose lease expired', async () => {
    // Prepare: b1 leased by a runner that will not finish (1 ms lease)
    const w = await world(['b1', 'b2', 'b3'])
    const master = w.pools.master
    const pass = await currentPass(master)
    expect(await claimNext(master, pass, 'crashed', 1)).toBe('b1')
    await sleep(20)
    const cursor: ClaimCursor = {}
    const claim = () => claimNext(master, pass, 'A', 60_000, { cursor, batch: 2 })

    // Act + Assess: in id order after the cursor, b1's expired lease included
    expect(await claim()).toBe('b1')
    expect(await claim()).toBe('b2')
    await provisionTenant(w.pools, 'a0')
    expect(await claim()).toBe('b3')
    expect(cursor.after).toBe('b3')
    // Nothing after b3: from the first tenant again, where a0 sorts
    expect(await claim()).toBe('a0')
    expect(await claim()).toBeUndefined()
    expect((await progressOf(w, pass)).map((r) => [r.tenant_id, r.runner])).toEqual([
      ['a0', 'A'],
      ['b1', 'A'],
      ['b2', 'A'],
      ['b3', 'A'],
    ])
  }, 30_000)

  it('does not count work whose lease was lost to another runner', async () => {
    const w = await world(['l1'])
    const master = w.pools.master
    const pass = await currentPass(master)
    expect(await claimNext(master, pass, 'slow', 1)).toBe('l1')
    await sleep(20)

    const summary = await w.run()

    expect(summary).toMatchObject({ processed: 1, passComplete: true })
    // The slow runner's late outcome is refused, so it cannot be counted twice.
    expect(await finish(master, pass, 'l1', 'slow', { ok: true })).toBe(false)
  }, 60_000)

  it('analyzes every table of each tenant’s schema, one made outside the migrations too, and no other schema’s', async () => {
    // Prepare: a table of the tenant's own beside the migrations' ones, and one in a schema that is
    // no tenant's. reltuples is -1 until a table is first analyzed (or vacuumed).
    const w = await world(['an1', 'an2'])
    const outside = `${w.schemaPrefix}zz_outside`
    await withAdmin(async (admin) => {
      await admin.query(`CREATE TABLE ${w.schemaPrefix}an1.notes (body text)`)
      await admin.query(`CREATE SCHEMA ${outside}`)
      await admin.query(`CREATE TABLE ${outside}.notes (body text)`)
    })
    const tables = (schema: string) =>
      withAdmin(async (admin) => {
        const { rows } = await admin.query<{ name: string; reltuples: number }>(
          `SELECT c.relname AS name, c.reltuples FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = $1 AND c.relkind = 'r' ORDER BY c.relname`,
          [schema],
        )
        return rows
      })
    expect(await tables(`${w.schemaPrefix}an1`)).toContainEqual({ name: 'notes', reltuples: -1 })

    // Act
    expect(await w.run()).toMatchObject({ processed: 2, failed: 0, passComplete: true })

    // Assess: every table of both tenants analyzed, the outsider's not
    for (const tenant of ['an1', 'an2']) {
      const analyzed = await tables(`${w.schemaPrefix}${tenant}`)
      expect(analyzed.map((t) => t.name)).toEqual(
        expect.arrayContaining([
          'order_lines',
          'orders',
          'schema_migrations',
          ...(tenant === 'an1' ? ['notes'] : []),
        ]),
      )
      expect(analyzed.filter((t) => t.reltuples < 0)).toEqual([])
    }
    expect(await tables(outside)).toEqual([{ name: 'notes', reltuples: -1 }])
  }, 60_000)

  it('reaps idle sessions of per-tenant roles and of tenant traffic’s role when asked to', async () => {
    const w = await world([])
    await w.pools.end()
    const tag = randomBytes(3).toString('hex')
    const tenantRole = `trp${tag}_acme`
    const trafficRole = `trf${tag}`
    await withAdmin(async (admin) => {
      await admin.query(`CREATE ROLE ${tenantRole} LOGIN PASSWORD 'tenant-pw'`)
      await admin.query(`CREATE ROLE ${trafficRole} LOGIN PASSWORD 'tenant-pw'`)
    })
    const url = new URL(databaseUrl())
    const sessionAs = async (user: string, tenant: string) => {
      const session = new Client({
        host: url.hostname,
        port: Number(url.port),
        database: url.pathname.slice(1),
        user,
        password: 'tenant-pw',
        application_name: `${w.prefix}:${tenant}`,
      })
      session.on('error', () => {})
      await session.connect()
      return (await session.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid
    }
    const pids = [await sessionAs(tenantRole, 'acme'), await sessionAs(trafficRole, 'globex')]
    await sleep(300)

    const summary = await w.run({ reapIdleMs: 100, reapRolePrefix: `trp${tag}_`, reapRoles: [trafficRole] })

    expect(summary.zombiesReaped).toBe(2)
    for (const pid of pids) expect(await backendAlive(pid)).toBe(false)
  }, 60_000)
})
