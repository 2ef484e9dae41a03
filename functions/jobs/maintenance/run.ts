// One run of the maintenance job: resumes the open pass, works through its tenants at most
// `concurrency` at a time, stops starting new ones when the time budget runs low, and reports.
import { randomUUID } from 'node:crypto'
import { escapeIdentifier } from 'pg'
import { type Log, type Migration, migrate, sqlState, type TenantPools } from '../../../lib'
import {
  type ClaimCursor,
  claimNext,
  closeIfComplete,
  currentPass,
  finish,
  prunePasses,
  remaining,
} from './progress'
import { reapZombies } from './reaper'

const defaults = {
  concurrency: 4,
  // Below this much remaining time no tenant is started: the last one must still finish.
  safetyMarginMs: 60_000,
  retentionDays: 30,
  // Closed passes whose per-tenant progress is kept (one row per tenant each); older ones go.
  passesKept: 10,
  // A claim outlives a crashed run by this much, then the tenant is free again. Longer than Lambda's
  // 15-minute limit, so a live run never loses its tenant to another.
  leaseMs: 16 * 60_000,
  reapIdleMs: 10 * 60_000,
  progressEvery: 25,
}

export interface MaintenanceOptions {
  /** The job's own registry: its budget bounds the job's connections (concurrency + 1). */
  pools: TenantPools
  migrations: Migration[]
  remainingMs: () => number
  /**
   * When the job's database work must be over (`Date.now()` milliseconds): the invocation's end less
   * a margin. A tenant whose work is still running then fails with a typed error instead of the
   * whole invocation timing out. Undefined: no bound beyond the server's statement_timeout.
   */
  deadline?: number
  logger: Log
  concurrency?: number
  safetyMarginMs?: number
  retentionDays?: number
  /** Closed passes whose progress rows are kept when a pass closes (10); older ones are deleted. */
  passesKept?: number
  leaseMs?: number
  reapIdleMs?: number
  /** Roles whose idle sessions under our application_name prefix may be reaped (default: the job's). */
  reapRoles?: string[]
  /** Also reap sessions of roles whose name starts with this (per-tenant roles, e.g. `tenant_`). */
  reapRolePrefix?: string
  /** application_name prefix of the API's sessions (not the job's). */
  applicationNamePrefix: string
  progressEvery?: number
  runner?: string
}

export interface MaintenanceSummary {
  pass: number
  runner: string
  processed: number
  failed: number
  failures: Array<{ tenantId: string; code: string }>
  /** Tenants whose outcome could not be recorded (lease lost, master unreachable): redone later. */
  unrecorded: number
  skipped: number
  remaining: number
  passComplete: boolean
  /** Progress rows of older passes deleted when this run closed its pass. */
  progressPruned: number
  zombiesReaped: number
  durationMs: number
}

/** Applies migrations, purges old soft-deleted rows and runs ANALYZE, all on the tenant's own connection. */
async function maintainTenant(
  o: Required<Omit<MaintenanceOptions, 'reapRoles' | 'reapRolePrefix' | 'deadline'>> &
    Pick<MaintenanceOptions, 'deadline'>,
  tenantId: string,
): Promise<void> {
  const schema = o.pools.schemaOf(tenantId)
  // Bounded by the invocation: the job's own work on a tenant that hangs (a silent database) ends
  // with a typed error, recorded as that tenant's failure, before Lambda's timeout would end it all.
  // On the tenant's cluster. A tenant moved meanwhile is fenced there, and fails with TPM01: it is
  // recorded and done in a later pass.
  const { rows: placed } = await o.pools
    .forMaster({ deadline: o.deadline })
    .query<{ cluster: string }>('SELECT cluster FROM tenants WHERE id = $1', [tenantId])
  const db = o.pools.forTenant(tenantId, { deadline: o.deadline, cluster: placed[0]?.cluster })
  await db.withClient(async (client) => {
    const { rowCount } = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema])
    // A missing schema is a fault to report, not something to recreate empty under a live tenant.
    if (!rowCount)
      throw Object.assign(new Error(`schema ${schema} does not exist`), { code: 'SCHEMA_MISSING' })
    // Each migration commits with its record, or neither happens.
    await migrate(client, schema, o.migrations)
    await client.query('BEGIN')
    // Schema-qualified: the session's search_path is not relied on (proxy-safe roles set their own).
    const q = escapeIdentifier(schema)
    await client.query(
      `DELETE FROM ${q}.order_lines WHERE order_id IN
         (SELECT id FROM ${q}.orders WHERE deleted_at < now() - make_interval(days => $1))`,
      [o.retentionDays],
    )
    await client.query(`DELETE FROM ${q}.orders WHERE deleted_at < now() - make_interval(days => $1)`, [
      o.retentionDays,
    ])
    await client.query('COMMIT')
    // The schema's tables by what depends on the schema (pg_depend's index): pg_tables has no index
    // on the schema and reads all of pg_class, every tenant's relations, once per tenant. At 2,000
    // tenants that one query took about a third of a pass, and a pass grew with the square of them.
    const { rows } = await client.query<{ name: string }>(
      `SELECT c.relname AS name FROM pg_depend d JOIN pg_class c ON c.oid = d.objid
        WHERE d.refclassid = 'pg_namespace'::regclass
          AND d.refobjid = (SELECT oid FROM pg_namespace WHERE nspname = $1)
          AND d.classid = 'pg_class'::regclass AND c.relkind IN ('r', 'p')`,
      [schema],
    )
    for (const { name } of rows)
      await client.query(`ANALYZE ${escapeIdentifier(schema)}.${escapeIdentifier(name)}`)
  })
}

export async function runMaintenance(options: MaintenanceOptions): Promise<MaintenanceSummary> {
  const o = { ...defaults, runner: randomUUID(), ...options }
  if (!Number.isInteger(o.concurrency) || o.concurrency < 1)
    throw new Error('concurrency must be an integer >= 1')
  if (!Number.isInteger(o.passesKept) || o.passesKept < 1)
    throw new Error('passesKept must be an integer >= 1')
  const started = Date.now()
  const master = o.pools.master
  const zombiesReaped = await reapZombies(master, {
    prefix: o.applicationNamePrefix,
    idleMs: o.reapIdleMs,
    roles: o.reapRoles,
    rolePrefix: o.reapRolePrefix,
  }).catch((err: unknown) => {
    o.logger.warn('zombie reaping failed', { code: sqlState(err) })
    return 0
  })
  const pass = await currentPass(master)
  const failures: MaintenanceSummary['failures'] = []
  let processed = 0
  let outOfTime = false

  let unrecorded = 0
  // The outcome is written once more if the master connection fails; a lost lease or a second failure
  // is counted, never mistaken for work done (the tenant comes back when its lease expires).
  const record = async (tenantId: string, outcome: { ok: true } | { ok: false; code: string }) => {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        if (await finish(master, pass, tenantId, o.runner, outcome)) return true
        o.logger.warn('maintenance lease lost before the outcome was recorded', { tenantId })
        break
      } catch (err) {
        o.logger.warn('recording a maintenance outcome failed', { tenantId, code: sqlState(err), attempt })
      }
    }
    unrecorded++
    return false
  }

  // A tenant is started only with the safety margin left and before the run's deadline; the claim
  // loop checks the same, so a run whose time is up never keeps looking for work.
  const inTime = () =>
    o.remainingMs() >= o.safetyMarginMs && (o.deadline === undefined || Date.now() < o.deadline)
  // Shared by the workers: each claim goes on after the run's last one.
  const cursor: ClaimCursor = {}
  const worker = async () => {
    for (;;) {
      if (!inTime()) {
        outOfTime = true
        return
      }
      const tenantId = await claimNext(master, pass, o.runner, o.leaseMs, { inTime, cursor })
      if (tenantId === undefined) {
        if (!inTime()) outOfTime = true
        return
      }
      let outcome: { ok: true } | { ok: false; code: string }
      try {
        await maintainTenant(o, tenantId)
        outcome = { ok: true }
      } catch (err) {
        outcome = { ok: false, code: sqlState(err) ?? 'UNKNOWN' }
        o.logger.warn('tenant maintenance failed', { tenantId, code: outcome.code })
      }
      // The tenant's connection goes back to the job's login and is rebound to the next tenant: a
      // pass opens about concurrency + 1 connections, not one per tenant. Its backend's catalog
      // cache, which every tenant touched grows, is bounded as the API's is (maxSchemasPerConnection),
      // and the job's scopes by maxScopes.
      if (!(await record(tenantId, outcome))) continue
      if (!outcome.ok) failures.push({ tenantId, code: outcome.code })
      processed++
      if (processed % o.progressEvery === 0)
        o.logger.info('maintenance progress', { pass, processed, failed: failures.length })
    }
  }
  // allSettled: one worker's failure (the master unreachable) must not leave the others unwatched.
  const settled = await Promise.allSettled(Array.from({ length: o.concurrency }, worker))
  for (const r of settled) {
    if (r.status === 'rejected') o.logger.error('maintenance worker stopped', { code: sqlState(r.reason) })
  }

  const left = await remaining(master, pass)
  const passComplete = left === 0 && (await closeIfComplete(master, pass))
  // Once per pass, by the run that closed it. A failure costs only the space: the next pass retries.
  const progressPruned = passComplete
    ? await prunePasses(master, o.passesKept).catch((err: unknown) => {
        o.logger.warn('pruning old maintenance passes failed', { code: sqlState(err) })
        return 0
      })
    : 0
  const summary: MaintenanceSummary = {
    pass,
    runner: o.runner,
    processed: processed - failures.length,
    failed: failures.length,
    failures,
    unrecorded,
    skipped: outOfTime ? left : 0,
    remaining: left,
    passComplete,
    progressPruned,
    zombiesReaped,
    durationMs: Date.now() - started,
  }
  o.logger.info('maintenance run finished', { ...summary, failures: failures.slice(0, 20) })
  return summary
}
