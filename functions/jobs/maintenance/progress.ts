// The maintenance cursor, in the master schema. A pass covers every active tenant once; each tenant
// is claimed with a lease row (pass, tenant) so that overlapping runs never work on the same tenant,
// and a run that stops (time budget, crash) leaves the rest of the pass to the next run.
import type { TenantDb } from '../../../lib'

/** The open pass, or a new one when there is none. Serialised so two runs cannot open two passes. */
export async function currentPass(master: TenantDb): Promise<number> {
  return master.transaction(async (c) => {
    await c.query(`SELECT pg_advisory_xact_lock(hashtext('tenant-pools:maintenance:pass'))`)
    const open = await c.query<{ id: string }>(
      'SELECT id FROM maintenance_passes WHERE finished_at IS NULL ORDER BY id LIMIT 1',
    )
    if (open.rows[0]) return Number(open.rows[0].id)
    const created = await c.query<{ id: string }>(
      'INSERT INTO maintenance_passes DEFAULT VALUES RETURNING id',
    )
    return Number(created.rows[0]?.id)
  })
}

// Tenants of the pass that may be claimed now: active, not done or failed in this pass, and not
// held by a live lease of any pass (an older pass closed under a slow runner keeps it busy).
const CLAIMABLE = `t.status = 'active'
  AND NOT EXISTS (SELECT 1 FROM maintenance_progress p
                   WHERE p.pass_id = $1 AND p.tenant_id = t.id
                     AND (p.status <> 'running' OR p.lease_until > clock_timestamp()))
  AND NOT EXISTS (SELECT 1 FROM maintenance_progress p
                   WHERE p.tenant_id = t.id AND p.status = 'running' AND p.lease_until > clock_timestamp())`

/**
 * Where a run's claims go on from: the last tenant it claimed. Claims walk the tenants in id order,
 * and one that started from the first tenant every time would step over every tenant already done
 * in the pass, making a pass quadratic in the tenant count.
 */
export interface ClaimCursor {
  after?: string
}

export interface ClaimOptions {
  /** False once the run's time is up: no claim is tried then. */
  inTime?: () => boolean
  /** Shared by a run's workers. */
  cursor?: ClaimCursor
  /** Tenants looked at per statement, in id order (100). */
  batch?: number
}

/**
 * Claims the next claimable tenant of the pass, after the cursor and then, if none is left after it,
 * from the first: tenants added mid-pass and leases that expired are candidates too, wherever they
 * sort. Each statement looks at one batch of tenants, taken from the primary key in id order whatever
 * the planner thinks of the tables' sizes, so a claim never reads the whole catalog in one go.
 * Returns undefined when no tenant is left to claim, or once `inTime()` says the run's time is up.
 */
export async function claimNext(
  master: TenantDb,
  pass: number,
  runner: string,
  leaseMs: number,
  { inTime = () => true, cursor = {}, batch = 100 }: ClaimOptions = {},
): Promise<string | undefined> {
  // From the first tenant: '' sorts before every tenant id, which is never empty.
  let from = cursor.after ?? ''
  // Whether this walk has been through the first tenant: its reaching the last one then means
  // that none is left to claim.
  let wrapped = from === ''
  while (inTime()) {
    // The candidate and the batch's last id are returned beside the claim, so that a candidate
    // another runner took first, a batch with none, and the end of the catalog are told apart.
    const { rows } = await master.query<{
      candidate: string | null
      claimed: string | null
      last: string | null
    }>(
      `WITH batch AS MATERIALIZED (SELECT id, status FROM tenants WHERE id > $4 ORDER BY id LIMIT $5),
            next AS (SELECT t.id FROM batch t WHERE ${CLAIMABLE} ORDER BY t.id LIMIT 1),
            claimed AS (
              INSERT INTO maintenance_progress (pass_id, tenant_id, status, runner, lease_until)
              SELECT $1, id, 'running', $2, clock_timestamp() + make_interval(secs => $3::float8 / 1000) FROM next
              ON CONFLICT (pass_id, tenant_id) DO UPDATE
                 SET runner = EXCLUDED.runner, lease_until = EXCLUDED.lease_until, started_at = clock_timestamp()
               WHERE maintenance_progress.status = 'running' AND maintenance_progress.lease_until <= clock_timestamp()
              RETURNING tenant_id)
       SELECT (SELECT id FROM next) AS candidate, (SELECT tenant_id FROM claimed) AS claimed,
              (SELECT max(id) FROM batch) AS last`,
      [pass, runner, leaseMs, from, batch],
    )
    const { candidate, claimed, last } = rows[0] ?? { candidate: null, claimed: null, last: null }
    if (claimed !== null) {
      cursor.after = claimed
      return claimed
    }
    if (candidate !== null) {
      // Another runner took the candidate first: it is leased now, look past it.
      from = candidate
    } else if (last !== null) {
      // None claimable in this batch: the next one.
      from = last
    } else if (!wrapped) {
      // None after the cursor: once more from the first tenant.
      from = ''
      wrapped = true
    } else {
      cursor.after = undefined
      return undefined
    }
  }
  return undefined
}

/** Active tenants of the pass not yet done or failed, nor held by a live lease of this pass. */
export async function remaining(master: TenantDb, pass: number): Promise<number> {
  const { rows } = await master.query<{ n: string }>(
    `SELECT count(*) AS n FROM tenants t
      WHERE t.status = 'active'
        AND NOT EXISTS (SELECT 1 FROM maintenance_progress p
                         WHERE p.pass_id = $1 AND p.tenant_id = t.id
                           AND (p.status <> 'running' OR p.lease_until > clock_timestamp()))`,
    [pass],
  )
  return Number(rows[0]?.n)
}

/** Records the outcome. False when the lease was lost (expired and taken by another runner). */
export async function finish(
  master: TenantDb,
  pass: number,
  tenantId: string,
  runner: string,
  outcome: { ok: true } | { ok: false; code: string },
): Promise<boolean> {
  const { rowCount } = await master.query(
    `UPDATE maintenance_progress SET status = $4, error_code = $5, finished_at = clock_timestamp()
      WHERE pass_id = $1 AND tenant_id = $2 AND runner = $3 AND status = 'running'`,
    [pass, tenantId, runner, outcome.ok ? 'done' : 'failed', outcome.ok ? null : outcome.code],
  )
  return (rowCount ?? 0) > 0
}

/**
 * Closes the pass when every active tenant is done or failed and no lease of the pass is live
 * (whatever its tenant's status now); the next run opens a new one.
 */
export async function closeIfComplete(master: TenantDb, pass: number): Promise<boolean> {
  return master.transaction(async (c) => {
    await c.query(`SELECT pg_advisory_xact_lock(hashtext('tenant-pools:maintenance:pass'))`)
    const { rowCount } = await c.query(
      `UPDATE maintenance_passes SET finished_at = now()
        WHERE id = $1 AND finished_at IS NULL
          AND NOT EXISTS (SELECT 1 FROM maintenance_progress p
                           WHERE p.pass_id = $1 AND p.status = 'running' AND p.lease_until > clock_timestamp())
          AND NOT EXISTS (SELECT 1 FROM tenants t
                           WHERE t.status = 'active'
                             AND NOT EXISTS (SELECT 1 FROM maintenance_progress p
                                              WHERE p.pass_id = $1 AND p.tenant_id = t.id AND p.status <> 'running'))`,
      [pass],
    )
    return (rowCount ?? 0) > 0
  })
}

/**
 * Forgets every closed pass but the `kept` most recent, with their progress rows: a pass writes one
 * row per tenant, and at thousands of tenants an hourly pass would grow the master schema by that
 * much every hour. What the kept passes recorded (which tenant failed, and why) stays. A row whose
 * lease is live stays too: a slow runner of an older pass still holds its tenant, and claims look for
 * it. Serialised with the opening and closing of passes. Returns how many progress rows went.
 */
export async function prunePasses(master: TenantDb, kept: number): Promise<number> {
  return master.transaction(async (c) => {
    await c.query(`SELECT pg_advisory_xact_lock(hashtext('tenant-pools:maintenance:pass'))`)
    const old = `SELECT id FROM maintenance_passes WHERE finished_at IS NOT NULL ORDER BY id DESC OFFSET $1`
    const { rowCount } = await c.query(
      `DELETE FROM maintenance_progress p
        WHERE p.pass_id IN (${old})
          AND NOT (p.status = 'running' AND p.lease_until > clock_timestamp())`,
      [kept],
    )
    await c.query(
      `DELETE FROM maintenance_passes m
        WHERE m.id IN (${old})
          AND NOT EXISTS (SELECT 1 FROM maintenance_progress p WHERE p.pass_id = m.id)`,
      [kept],
    )
    return rowCount ?? 0
  })
}
