// Moving a tenant to another cluster (rebalancing): claim the move in the catalog, fence the old
// copy, copy the schema (copy-schema.ts), flip the placement, and drop the old copy. Reads go on
// throughout; writes are refused with TPM01 by the fence (503 with Retry-After) from the moment it
// stands until the flip.
//
// One mover per tenant at a time: the whole move runs under a lock that dies with its session
// (move-lock.ts), and every catalog statement runs on that session. The catalog records how far a
// move got (move-plan.ts), so a move cut short (a Lambda timeout) is resumed, finished or rolled
// back by posting it again, and a failed move undoes only what belongs to its own claim.
import { type ClientBase, escapeIdentifier } from 'pg'
import {
  capturedTables,
  fence,
  HttpError,
  type Log,
  migrate,
  startCapture,
  stopCapture,
  type TenantCatalog,
  type TenantPools,
  unfence,
} from '../../lib'
import { masterMigrations } from '../../migrations'
import {
  bulkCopy,
  type CopiedTables,
  type CopyPlan,
  catchUp,
  finishCopy,
  prepareTarget,
  validateForeignKeys,
} from './copy-schema'
import { type MoveLock, withMoveLock } from './move-lock'
import { type MovePlan, type PlacementRow, planMove } from './move-plan'

/** The points a move passes, each told once its work is done. */
export type MoveStep = 'claim' | 'capture' | 'copy' | 'fence' | 'verify' | 'flip' | 'drop'

/**
 * `moved`: this call moved the tenant. `resumed`: it took up a move cut short (before or after its
 * flip) and finished it. `rolled-back`: it undid a move cut short, the caller having asked for the
 * cluster the tenant still lived on.
 */
export type MoveOutcome = 'moved' | 'resumed' | 'rolled-back'

export interface MoveReport {
  id: string
  /** Where the tenant lived when the move began. */
  from: string
  /** Where it lives now. */
  to: string
  outcome: MoveOutcome
  /** Rolled back: the cluster whose unfinished copy was removed. */
  abandoned?: string
  /** The tables this call copied (none when it only finished or rolled back a move). */
  tables: CopiedTables
  /** False: the old copy is still there (fenced, so it takes no writes); post the move again to drop it. */
  oldCopyRemoved: boolean
  /** Where the time of a copying move went; `pauseMs`: writes refused, from the fence to the flip. */
  timings?: MoveTimings
  durationMs: number
}

export interface MoveTimings {
  /** The bulk copy, writes going on. */
  copyMs: number
  /** The catch-up passes before the fence, writes going on. */
  catchUpMs: number
  catchUpPasses: number
  /** Getting the fence's locks (writers wait, 100 ms at most at a time, and are not refused). */
  fenceMs: number
  /** The fence up to the flip, writes refused: the last pass, the checks, the flip. */
  pauseMs: number
}

export interface MoveOptions {
  /**
   * Told after each step's work: 'capture' once the change log records writes, 'copy' after the
   * first table, 'fence' once writes are refused, 'verify' once every table matches
   * but before the target commits. Tests cut the move short there.
   */
  onStep?: (step: MoveStep) => void | Promise<void>
}

/** One move under way: what its steps need. */
interface Move {
  pools: TenantPools
  catalog: TenantCatalog
  log: Log
  lock: MoveLock
  tenantId: string
  schema: string
  target: string
  step: (step: MoveStep) => Promise<void>
}

type Moved = Omit<MoveReport, 'id' | 'durationMs'>

/** Moves `tenantId` to cluster `target`. Throws HttpError for a caller's mistake or a failed move. */
export async function moveTenant(
  pools: TenantPools,
  catalog: TenantCatalog,
  tenantId: string,
  target: string,
  log: Log,
  options: MoveOptions = {},
): Promise<MoveReport> {
  const started = Date.now()
  const schema = pools.schemaOf(tenantId)
  if (!pools.clusterNames.includes(target)) {
    throw new HttpError(400, 'UNKNOWN_CLUSTER', `Unknown cluster; known: ${pools.clusterNames.join(', ')}`)
  }
  try {
    return await withMoveLock(pools, tenantId, async (lock) => {
      const step = async (s: MoveStep) => options.onStep?.(s)
      const move: Move = { pools, catalog, log, lock, tenantId, schema, target, step }
      // The catalog may predate the move's phases (a move posted right after a deploy).
      await migrate(lock.client, pools.masterSchema, masterMigrations)
      const plan = planMove(await placementOf(move), target)
      return { id: tenantId, ...(await carryOut(move, plan)), durationMs: Date.now() - started }
    })
  } finally {
    // Not evicted: calls of this environment still on their way to the old copy would fail with
    // PoolsEndedError. They meet the fence or the missing schema instead, and are sent on
    // (placed-db.ts); the old scopes' connections are rebound or expire with them.
    catalog.invalidate(tenantId)
  }
}

async function carryOut(move: Move, plan: MovePlan): Promise<Moved> {
  switch (plan.action) {
    case 'start':
      await claim(move, plan.source)
      await move.step('claim')
      return forward(move, plan.source, 'moved')
    case 'resume':
      await move.step('claim')
      return forward(move, plan.source, 'resumed')
    case 'roll-back':
      try {
        await rollBack(move, plan.source, plan.abandoned)
      } catch (err) {
        move.log.error('tenant move: the roll-back did not finish', { tenantId: move.tenantId, err })
        throw new HttpError(
          503,
          'MOVE_INCOMPLETE',
          `The roll-back of the move to cluster ${plan.abandoned} did not finish: post cluster ` +
            `${plan.source} again to finish it`,
          { cause: err },
        )
      }
      return {
        from: plan.source,
        to: plan.source,
        outcome: 'rolled-back',
        abandoned: plan.abandoned,
        tables: [],
        oldCopyRemoved: true,
      }
    case 'finish':
      return {
        from: plan.source,
        to: move.target,
        outcome: 'resumed',
        tables: [],
        oldCopyRemoved: await dropOldCopy(move, plan.source),
      }
  }
}

const NO_IDLE_TIMEOUT = `SELECT set_config(name, '0', false) FROM pg_settings WHERE name = 'idle_session_timeout'`
// How little the change log must hold before the fence goes up: the last pass, behind it, is short.
const CATCH_UP_SMALL = 200
// Passes before the fence goes up whatever is left (writes faster than the catch-up can follow).
const CATCH_UP_PASSES = 20

// Copies while writes go on, catches up from the change log, then fences for the last pass and the
// flip; then drops the old copy. A failure before the flip is undone. A schema whose changes cannot
// be captured (a table without a primary key) is fenced for the whole copy instead.
async function forward(move: Move, source: string, outcome: MoveOutcome): Promise<Moved> {
  const { tenantId, schema, target } = move
  const timings: MoveTimings = { copyMs: 0, catchUpMs: 0, catchUpPasses: 0, fenceMs: 0, pauseMs: 0 }
  let tables: CopiedTables
  let plan: CopyPlan
  try {
    ;({ tables, plan } = await onCluster(move, source, (src) =>
      onCluster(move, target, async (dst) => {
        // Both sessions are held through the move, idle between its steps: the registry's
        // idle_session_timeout must not end them (the registry resets it when they go back).
        for (const c of [src, dst]) await c.query(NO_IDLE_TIMEOUT)
        const captured = await capturedTables(src, schema)
        if (captured) await startCapture(src, schema, captured)
        else await fence(src, schema)
        await move.step('capture')
        // The copy starts by dropping whatever the target holds of the schema.
        await move.lock.confirm()
        const plan = await prepareTarget(src, dst, schema, captured !== undefined)
        let first = true
        let started = Date.now()
        const tables = await bulkCopy(src, dst, plan, {
          tableCopied: async () => {
            if (first) await move.step('copy')
            first = false
          },
        })
        timings.copyMs = Date.now() - started
        started = Date.now()
        while (timings.catchUpPasses < CATCH_UP_PASSES) {
          timings.catchUpPasses++
          if ((await catchUp(src, dst, plan)) < CATCH_UP_SMALL) break
        }
        timings.catchUpMs = Date.now() - started
        started = Date.now()
        await fence(src, schema)
        timings.fenceMs = Date.now() - started
        const fencedAt = Date.now()
        await move.step('fence')
        await finishCopy(src, dst, plan, { verified: () => move.step('verify') })
        await flip(move, source)
        timings.pauseMs = Date.now() - fencedAt
        return { tables, plan }
      }),
    ))
  } catch (err) {
    return failed(move, source, err)
  }
  move.catalog.invalidate(tenantId)
  await move.step('flip')
  // The rows are the source's, which held its foreign keys: checked now, writes going on.
  await onCluster(move, target, (dst) => validateForeignKeys(dst, plan)).catch((err: unknown) =>
    move.log.warn('tenant moved, but its foreign keys could not be validated (they hold for new rows)', {
      tenantId,
      err,
    }),
  )
  // The old copy is fenced; removing it makes a stale environment's reads fail over to the new one.
  const oldCopyRemoved = await dropOldCopy(move, source)
  return { from: source, to: target, outcome, tables, oldCopyRemoved, timings }
}

async function placementOf(move: Move): Promise<PlacementRow | undefined> {
  const { rows } = await move.lock.client.query<PlacementRow>(
    'SELECT status, cluster, moving_to, old_copy_on FROM tenants WHERE id = $1',
    [move.tenantId],
  )
  return rows[0]
}

// Marks the move in the catalog. Until the flip (or a roll-back), the tenant can be moved nowhere else.
async function claim(move: Move, source: string): Promise<void> {
  const { lock, schema, tenantId, target } = move
  const { rowCount: ownRole } = await lock.client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [schema])
  if (ownRole) {
    throw new HttpError(
      409,
      'ROLE_NOT_MOVABLE',
      'A tenant with a role of its own cannot be moved (roles live on one cluster)',
    )
  }
  const { rowCount } = await lock.client.query(
    `UPDATE tenants SET moving_to = $2, updated_at = now()
     WHERE id = $1 AND cluster = $3 AND moving_to IS NULL AND old_copy_on IS NULL`,
    [tenantId, target, source],
  )
  if (rowCount !== 1) throw new HttpError(409, 'MOVE_IN_PROGRESS', 'The tenant changed meanwhile; try again')
  move.catalog.invalidate(tenantId)
}

// The placement changes, and the old copy is recorded as still to drop, in one statement on the
// lock's session: it cannot happen once the lock is lost.
async function flip(move: Move, source: string): Promise<void> {
  const { rowCount } = await move.lock.client.query(
    `UPDATE tenants SET cluster = $3, moving_to = NULL, old_copy_on = $2, updated_at = now()
     WHERE id = $1 AND cluster = $2 AND moving_to = $3 AND old_copy_on IS NULL`,
    [move.tenantId, source, move.target],
  )
  if (rowCount !== 1) throw new Error('the catalog no longer shows this move claimed: it was changed by hand')
}

// After the flip: drops the old copy, then clears its record. False if the copy is still there.
async function dropOldCopy(move: Move, source: string): Promise<boolean> {
  const { lock, log, tenantId, target } = move
  try {
    await lock.confirm()
    await dropSchema(move, source)
  } catch (err) {
    log.warn('tenant moved, but its old copy could not be removed (it stays fenced): post the move again', {
      tenantId,
      cluster: source,
      err,
    })
    return false
  }
  await move.step('drop')
  try {
    await lock.client.query(
      `UPDATE tenants SET old_copy_on = NULL, updated_at = now()
       WHERE id = $1 AND cluster = $2 AND old_copy_on = $3`,
      [tenantId, target, source],
    )
  } catch (err) {
    // The copy is gone; the next move of the tenant is refused until this one is posted again.
    log.warn('tenant moved and its old copy removed, but the catalog still records it', { tenantId, err })
  }
  return true
}

// A failure before the flip: undone if this call still holds the lock and the catalog still shows
// its claim; otherwise left for the next post to resume or roll back (the flip may even have
// committed, its answer lost with the session). The answer says which: "stays on" only if undone.
async function failed(move: Move, source: string, err: unknown): Promise<never> {
  const { lock, log, tenantId, target } = move
  log.error('tenant move failed', { tenantId, from: source, to: target, err })
  let undone = false
  try {
    await lock.confirm()
    const row = await placementOf(move)
    if (row?.cluster === source && row.moving_to === target && row.old_copy_on === null) {
      await rollBack(move, source, target)
      undone = true
    }
  } catch (undoErr) {
    log.error('tenant move: could not undo the failed move', { tenantId, err: undoErr })
  }
  move.catalog.invalidate(tenantId)
  if (undone) {
    throw new HttpError(503, 'MOVE_FAILED', `The move failed; the tenant stays on cluster ${source}`, {
      cause: err,
    })
  }
  throw new HttpError(
    503,
    'MOVE_INCOMPLETE',
    `The move to cluster ${target} failed part way and could not be undone; the catalog keeps how far ` +
      `it got: post it again to resume or finish it, or (unless it had flipped) post cluster ${source} ` +
      'to roll it back',
    { cause: err },
  )
}

// Undoes a claimed move that did not flip, the catalog showing the claim under this call's lock:
// the copy on `abandoned` is the claim's (the tenant does not live there), and so is the fence on
// `source`. The claim goes last, so a roll-back cut short is found and finished by the next post.
async function rollBack(move: Move, source: string, abandoned: string): Promise<void> {
  const { lock, schema, tenantId } = move
  await lock.confirm()
  await dropSchema(move, abandoned)
  await lock.confirm()
  await onCluster(move, source, async (c) => {
    // Bounded, as the fence is (ddl-locks.ts): behind a long write the roll-back fails, and is
    // posted again.
    await stopCapture(c, schema)
    await unfence(c, schema)
  })
  const { rowCount } = await lock.client.query(
    `UPDATE tenants SET moving_to = NULL, updated_at = now()
     WHERE id = $1 AND cluster = $2 AND moving_to = $3 AND old_copy_on IS NULL`,
    [tenantId, source, abandoned],
  )
  if (rowCount !== 1) throw new Error('the catalog no longer shows the claim: it was changed by hand')
  move.catalog.invalidate(tenantId)
}

async function dropSchema(move: Move, cluster: string): Promise<void> {
  await onCluster(move, cluster, async (c) => {
    await c.query(`SELECT set_config('lock_timeout', '10s', false)`)
    await c.query(`DROP SCHEMA IF EXISTS ${escapeIdentifier(move.schema)} CASCADE`)
  })
}

const onCluster = <T>(move: Move, cluster: string, fn: (client: ClientBase) => Promise<T>): Promise<T> =>
  move.pools.withClient(move.tenantId, fn, { cluster })
