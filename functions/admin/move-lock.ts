// One mover per tenant at a time, across every environment: a session advisory lock on the catalog's
// database, held by the connection that runs all of the move's catalog statements. A second post
// while the first runs is refused (409); one that finds the lock free and a move half done in the
// catalog knows its mover is gone (the lock dies with its session), and may take the move over.
import type { ClientBase } from 'pg'
import { HttpError, type TenantPools } from '../../lib'
import { within } from '../../lib/pool/within'

/** The session that holds a tenant's move lock. */
export interface MoveLock {
  /** The session: every catalog statement of the move runs on it, so none runs once it is lost. */
  client: ClientBase
  /**
   * Resolves if the server says this session still holds the lock; else throws MoveLockLostError.
   * Called before each step that drops or unfences: another mover cannot take the lock until the
   * server has given this session up, which takes the keepalive's ~20 s of silence after this answer
   * (or a terminated backend: then only the few milliseconds between the answer and the step).
   */
  confirm(): Promise<void>
}

export class MoveLockLostError extends Error {
  override name = 'MoveLockLostError'
}

// The session sits idle while the copy runs: the registry's idle_session_timeout (30 s by default)
// would end it, and the lock with it, mid-move. The keepalives free the lock of a holder that
// vanished (a frozen or killed environment) within ~20 s (5 + 5 × 3). Its statement_timeout stays:
// it only runs short catalog statements, which should not wait long behind anyone's row lock. Only
// the settings this server has are set (idle_session_timeout is 14 and later).
const SESSION_SETTINGS: Record<string, string> = {
  idle_session_timeout: '0',
  tcp_keepalives_idle: '5',
  tcp_keepalives_interval: '5',
  tcp_keepalives_count: '3',
}
const SET_SESSION = `SELECT set_config(s.name, v.setting, false) FROM json_each_text($1::json) AS v (name, setting)
  JOIN pg_settings s USING (name)`
const UNLOCK = `SELECT pg_advisory_unlock(hashtextextended($1, 0)),
  (SELECT count(set_config(s.name, s.reset_val, false)) FROM pg_settings s WHERE s.name = ANY ($2::text[]))`

// Whether this session holds the lock: a 64-bit key shows in pg_locks as two 32-bit halves.
const HOLDS = `SELECT EXISTS (SELECT 1 FROM pg_locks
  WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted AND objsubid = 1
    AND classid::bigint = (k >> 32) & 4294967295 AND objid::bigint = k & 4294967295) AS held
  FROM (SELECT hashtextextended($1, 0) AS k) AS key`

// Longer than a round trip to a loaded catalog database by far, shorter than the keepalive's window.
const ANSWER_TIMEOUT_MS = 5_000

/**
 * Runs `fn` holding the move lock of `tenantId`, or throws 409 MOVE_IN_PROGRESS at once, having
 * changed nothing, when another call holds it.
 */
export async function withMoveLock<T>(
  pools: TenantPools,
  tenantId: string,
  fn: (lock: MoveLock) => Promise<T>,
): Promise<T> {
  // 64 bits: two tenants whose keys collide would refuse each other's moves (409), nothing worse.
  const key = `tenant-pools:move:${tenantId}`
  // Set in the callback (an object: TypeScript does not follow assignments made in a closure).
  const held: { busy?: boolean; result?: { value: T } | { error: unknown } } = {}
  try {
    await pools.master.withClient(async (client) => {
      const { rows } = await client.query<{ locked: boolean }>(
        'SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked',
        [key],
      )
      if (!rows[0]?.locked) {
        held.busy = true
        return
      }
      await client.query(SET_SESSION, [JSON.stringify(SESSION_SETTINGS)])
      try {
        held.result = { value: await fn({ client, confirm: () => confirm(client, key) }) }
      } catch (error) {
        held.result = { error }
      }
      // Now: the registry resets a session only when it next lends it, and an idle pooled
      // connection would keep the lock (and these settings) until then. If this fails, the
      // connection is destroyed, which frees the lock too.
      await within(
        client.query(UNLOCK, [key, Object.keys(SESSION_SETTINGS)]),
        ANSWER_TIMEOUT_MS,
        () => new MoveLockLostError('the move lock was not released in time'),
      )
    })
  } catch (err) {
    // Once the move has run, its answer stands whether or not the release succeeded.
    if (held.result === undefined) throw err
  }
  if (held.busy) {
    throw new HttpError(
      409,
      'MOVE_IN_PROGRESS',
      'Another call is moving this tenant right now: post again once it has answered',
    )
  }
  if (held.result === undefined) throw new Error('withMoveLock: the move neither ran nor was refused')
  if ('error' in held.result) throw held.result.error
  return held.result.value
}

// Asks the server, not the client: the session answers, and it holds the lock (a transaction
// pooler between us and the catalog would hand the statement to another session, and fail it).
async function confirm(client: ClientBase, key: string): Promise<void> {
  let ok = false
  try {
    const answer = client.query<{ held: boolean }>(HOLDS, [key])
    ok =
      (await within(answer, ANSWER_TIMEOUT_MS, () => new Error('no answer in time'))).rows[0]?.held === true
  } catch (err) {
    throw new MoveLockLostError('the session holding the move lock was lost', { cause: err })
  }
  if (!ok) throw new MoveLockLostError('this session no longer holds the move lock')
}
