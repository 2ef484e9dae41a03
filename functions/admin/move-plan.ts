// What a posted move does, decided from the tenant's catalog row as read under the move lock. A move
// has two phases in the catalog: `moving_to` (claimed, not flipped: the tenant lives on `cluster`,
// fenced from the fence onwards) and `old_copy_on` (flipped: the tenant lives on `cluster`, the
// fenced old copy on `old_copy_on` is still to drop). A move cut short (a Lambda timeout) leaves one
// of them set; posting it again picks it up from there.
import { HttpError } from '../../lib'

/** The tenant's row, as the move reads it. */
export interface PlacementRow {
  status: string
  cluster: string
  moving_to: string | null
  old_copy_on: string | null
}

export type MovePlan =
  /** Nothing under way: claim a move from `source` to the target. */
  | { action: 'start'; source: string }
  /** A move to the target was cut short before its flip: start its copy over. */
  | { action: 'resume'; source: string }
  /** A move to `abandoned` was cut short before its flip, and the caller asks for the source. */
  | { action: 'roll-back'; source: string; abandoned: string }
  /** A move from `source` was cut short after its flip: drop its old copy. */
  | { action: 'finish'; source: string }

/** Decides what posting a move of the tenant of `row` to `target` does; throws the 404 or 409. */
export function planMove(row: PlacementRow | undefined, target: string): MovePlan {
  if (!row || row.status === 'deleted') throw new HttpError(404, 'TENANT_NOT_FOUND', 'Unknown tenant')
  if (row.old_copy_on !== null) {
    if (target === row.cluster) return { action: 'finish', source: row.old_copy_on }
    throw new HttpError(
      409,
      'MOVE_IN_PROGRESS',
      `The tenant's move to cluster ${row.cluster} is not finished (its old copy on ${row.old_copy_on} ` +
        `is still to drop): post cluster ${row.cluster} to finish it first`,
    )
  }
  if (row.moving_to === null) {
    if (target === row.cluster) {
      throw new HttpError(409, 'ALREADY_THERE', `The tenant already lives on cluster ${target}`)
    }
    return { action: 'start', source: row.cluster }
  }
  if (row.moving_to === target) return { action: 'resume', source: row.cluster }
  if (target === row.cluster) return { action: 'roll-back', source: row.cluster, abandoned: row.moving_to }
  throw new HttpError(
    409,
    'MOVE_IN_PROGRESS',
    `The tenant is being moved to cluster ${row.moving_to}: post cluster ${row.moving_to} to resume ` +
      `that move, or cluster ${row.cluster} to roll it back`,
  )
}
