// bench:scale-ops, the maintenance job: full passes over every tenant through the real handler
// (functions/jobs/maintenance/index.ts), invoked again and again as EventBridge would until the pass
// is complete. Each invocation gets a context whose getRemainingTimeInMillis counts down from the
// time it is given; the job starts no tenant with less than MAINTENANCE_SAFETY_MARGIN_MS (60 s) left,
// and the next invocation resumes the open pass from the master schema.
import type { Context } from 'aws-lambda'
import type { Client } from 'pg'
import type { MaintenanceSummary } from '../functions/jobs/maintenance/run'
import { type Migration, quoteIdent } from '../lib'
import { progress } from './progress'

type JobHandler = (event: unknown, context: Context) => Promise<MaintenanceSummary>

export interface Pass {
  /** What each invocation was told it had left at its start, in ms. */
  invocationMs: number
  migration: string
  invocations: number
  totalSeconds: number
  /** Tenants each invocation finished. */
  perInvocation: number[]
  failed: number
  unrecorded: number
  zombiesReaped: number
  /** From the master schema: one progress row per tenant, all done, and the migration applied once in each. */
  progressRows: number
  doneRows: number
  migratedSchemas: number
}

const contextFor = (ms: number): Context => {
  const end = Date.now() + ms
  return {
    awsRequestId: 'bench',
    functionName: 'maintenance',
    getRemainingTimeInMillis: () => end - Date.now(),
  } as unknown as Context
}

/**
 * One full pass that applies `migration` to every tenant: the migration is appended to the list the
 * job reads (the tenant migrations module's own array, so the handler sees it), then the handler is
 * invoked until it reports the pass complete. Checked afterwards in the master schema and in every
 * tenant schema, so that a tenant skipped or done twice shows.
 */
export async function fullPass(
  handler: JobHandler,
  migrations: Migration[],
  migration: Migration,
  invocationMs: number,
  monitor: Client,
  schemas: string[],
): Promise<Pass> {
  migrations.push(migration)
  const summaries: MaintenanceSummary[] = []
  const started = performance.now()
  do {
    const summary = await handler({}, contextFor(invocationMs))
    summaries.push(summary)
    progress(
      `  invocation ${summaries.length}: ${summary.processed} done, ${summary.failed} failed, ${summary.remaining} left, pass ${summary.pass}${summary.passComplete ? ' complete' : ''}`,
    )
    // A run that made no progress would repeat forever.
    if (summary.processed + summary.failed === 0 && !summary.passComplete)
      throw new Error('the job made no progress')
  } while (!summaries.at(-1)?.passComplete)
  const totalSeconds = (performance.now() - started) / 1000
  const pass = summaries[0]?.pass
  const { rows } = await monitor.query<{ rows: string; done: string }>(
    `SELECT count(*) AS rows, count(*) FILTER (WHERE status = 'done') AS done
       FROM maintenance_progress WHERE pass_id = $1`,
    [pass],
  )
  // Each tenant schema's own record of the migration (its primary key is the version): 1 in every one.
  const union = schemas
    .map((s) => `SELECT count(*) AS n FROM ${quoteIdent(s)}.schema_migrations WHERE version = $1`)
    .join(' UNION ALL ')
  const { rows: counts } = await monitor.query<{ n: string }>(union, [migration.version])
  const migratedSchemas = counts.filter((c) => Number(c.n) === 1).length
  return {
    invocationMs,
    migration: migration.version,
    invocations: summaries.length,
    totalSeconds: +totalSeconds.toFixed(1),
    perInvocation: summaries.map((s) => s.processed + s.failed),
    failed: summaries.reduce((n, s) => n + s.failed, 0),
    unrecorded: summaries.reduce((n, s) => n + s.unrecorded, 0),
    zombiesReaped: summaries.reduce((n, s) => n + s.zombiesReaped, 0),
    progressRows: Number(rows[0]?.rows),
    doneRows: Number(rows[0]?.done),
    migratedSchemas,
  }
}
