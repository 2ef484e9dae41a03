// Scheduled maintenance, first cut: applies pending migrations to active tenants, one at a time,
// and stops starting new tenants when the invocation's time runs low. Resumable passes, purging and
// ANALYZE arrive with the maintenance issue.
import type { Context } from 'aws-lambda'
import { migrate } from '../../lib'
import { tenantMigrations } from '../../migrations'
import { migrateMaster } from '../admin/provision'
import { logger, pools } from '../shared/runtime'

const SAFETY_MARGIN_MS = Number(process.env.MAINTENANCE_SAFETY_MARGIN_MS ?? 30_000)

export const handler = async (_event: unknown, context: Context) => {
  const p = pools()
  await migrateMaster(p)
  const { rows } = await p.master.query<{ id: string }>(
    `SELECT id FROM tenants WHERE status = 'active' ORDER BY id`,
  )
  let done = 0
  for (const { id } of rows) {
    if (context.getRemainingTimeInMillis() < SAFETY_MARGIN_MS) break
    await p.master.withClient((client) => migrate(client, p.schemaOf(id), tenantMigrations))
    done++
  }
  logger.info('maintenance pass', { tenants: rows.length, migrated: done })
  return { tenants: rows.length, migrated: done }
}
