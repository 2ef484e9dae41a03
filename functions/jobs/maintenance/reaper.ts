// Ends this application's own zombie sessions: idle for longer than a threshold, under our
// application_name prefix, logged in as one of our roles. Never another application's session,
// never another role's, never the job's own (its prefix differs, and its own backend is excluded).
// For sessions of roles other than its own, the job's role needs pg_read_all_stats (to see their
// state) and pg_signal_backend (to end them), as on RDS.
import type { TenantDb } from '../../../lib'

export interface ReapOptions {
  /** The API's application_name prefix; sessions are `<prefix>:<pool key>`. */
  prefix: string
  idleMs: number
  /** Roles that may be reaped besides the job's own login role (tenant traffic's). */
  roles?: string[]
  /** Also roles whose name starts with this (per-tenant roles). */
  rolePrefix?: string
}

// LIKE treats _ and % as wildcards: escape them so that the prefix matches itself only.
const escapeLike = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`)
const likePrefix = (prefix: string) => `${escapeLike(prefix)}:%`

export async function reapZombies(master: TenantDb, o: ReapOptions): Promise<number> {
  const { rows } = await master.query<{ ended: boolean }>(
    `SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity
      WHERE application_name LIKE $1
        AND state = 'idle'
        AND state_change < clock_timestamp() - make_interval(secs => $2::float8 / 1000)
        AND (usename = current_user OR usename = ANY (COALESCE($3::text[], '{}'))
             OR ($4::text IS NOT NULL AND usename LIKE $4::text))
        AND pid <> pg_backend_pid()`,
    [likePrefix(o.prefix), o.idleMs, o.roles ?? null, o.rolePrefix ? `${escapeLike(o.rolePrefix)}%` : null],
  )
  return rows.filter((r) => r.ended).length
}
