// DDL on a live tenant's tables (the fence, the change capture) takes a lock that conflicts with the
// tenant's writes. Waiting for it in the lock queue stalls every writer queued behind; holding one
// table's lock while waiting for another's deadlocks with a writer that takes them the other way
// (an order, then its lines). So each attempt waits a short while only (less than the server's
// deadlock_timeout, 1 s by default: the attempt gives up before the server would pick a victim,
// and the writer goes on), gives back whatever it took, and tries again after a pause.
import type { ClientBase } from 'pg'
import { DEADLOCK_DETECTED, LOCK_NOT_AVAILABLE, sqlState } from '../sqlstate'

/**
 * Bounds on taking DDL locks: `attemptMs` per attempt (its lock_timeout), `totalMs` for all of
 * them.
 *
 * @example
 * await fence(client, schema, { attemptMs: 200, totalMs: 30_000 })
 */
export interface LockRetryOptions {
  /** How long one attempt waits for a lock. */
  attemptMs?: number
  /** How long all attempts may take before the last error is thrown. */
  totalMs?: number
}

const defaults = { attemptMs: 100, totalMs: 10_000 }

/**
 * Runs `fn` in a transaction of its own on `client` whose lock waits are bounded by `attemptMs`;
 * retried, whole, while a lock was not granted in time (or the server broke a deadlock), for up to
 * `totalMs`. `fn` must be safe to run again from the start (it is rolled back each time).
 *
 * @example
 * await withLockRetries(client, async () => {
 *   await client.query('ALTER TABLE tenant_acme.orders ADD COLUMN note text')
 * }, { attemptMs: 100, totalMs: 10_000 })
 */
export async function withLockRetries<T>(
  client: ClientBase,
  fn: () => Promise<T>,
  options: LockRetryOptions = {},
): Promise<T> {
  const { attemptMs, totalMs } = { ...defaults, ...options }
  const until = Date.now() + totalMs
  for (let attempt = 1; ; attempt++) {
    await client.query('BEGIN')
    try {
      await client.query(`SELECT set_config('lock_timeout', $1, true)`, [`${attemptMs}ms`])
      const result = await fn()
      await client.query('COMMIT')
      return result
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {})
      const code = sqlState(err)
      const retryable = code === LOCK_NOT_AVAILABLE || code === DEADLOCK_DETECTED
      if (!retryable || Date.now() >= until) throw err
      // Jittered, growing: writers get the tables back between attempts.
      await new Promise((r) => setTimeout(r, Math.min(attemptMs * attempt, 500) * (0.5 + Math.random())))
    }
  }
}
