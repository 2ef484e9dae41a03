// Reader routing: a reader's scope is served by its cluster's reader endpoint while that answers.
// A reader that cannot be reached is skipped for readerRetryAfterMs, and its calls go to the writer
// in read-only sessions meanwhile; a read that lost the reader mid-statement ran nowhere else and is
// run again on the writer. The fallback is decided here only, and applied at two points: every
// checkout of a reader's scope is routed (`route`: withClient, transaction and leases have only
// that, since a callback is never run twice), and a query() also runs its statement once more on
// the writer when it failed for want of its reader (`orWriter`, around the routed checkout).
import { ConnectError, ConnectionLostError, TenantPoolsError } from '../errors'
import { isConnectionLost, sqlState } from '../sqlstate'
import type { CallLimits, Scope } from '../types'
import type { Cluster } from './clusters'
import type { RegistryContext } from './context'
import type { ValidatedScopes } from './scopes'

export class Readers {
  readonly #ctx: RegistryContext
  readonly #clusters: ReadonlyMap<string, Cluster>
  readonly #validated: ValidatedScopes

  constructor(ctx: RegistryContext, clusters: ReadonlyMap<string, Cluster>, validated: ValidatedScopes) {
    this.#ctx = ctx
    this.#clusters = clusters
    this.#validated = validated
  }

  /** Runs `run` for a reader's scope: on the writer while its reader is skipped, else as `orWriter`. */
  route<T>(scope: Scope, limits: CallLimits, run: (scope: Scope) => T | Promise<T>): Promise<T> {
    // Not async itself: one promise layer, whether the reader is skipped or not.
    const cluster = this.#clusters.get(scope.cluster) as Cluster
    if (cluster.readerDownUntil > this.#ctx.options.clock.now()) return this.#onWriter(scope, limits, run)
    return this.orWriter(scope, limits, run)
  }

  /** Runs `run` for a reader's scope; if the reader could not be reached, once more on the writer. */
  async orWriter<T>(scope: Scope, limits: CallLimits, run: (scope: Scope) => T | Promise<T>): Promise<T> {
    try {
      return await run(scope)
    } catch (err) {
      if (!readerUnreachable(err)) throw err
      return run(this.#readerFailed(scope, limits, err))
    }
  }

  async #onWriter<T>(scope: Scope, limits: CallLimits, run: (scope: Scope) => T | Promise<T>): Promise<T> {
    return run(this.#writerFor(scope, limits))
  }

  // The reader of `scope`'s cluster could not be reached: it is skipped for readerRetryAfterMs, and
  // the call goes to the writer, in a read-only session. Returns the writer's scope.
  #readerFailed(scope: Scope, limits: CallLimits, err: unknown): Scope {
    const cluster = this.#clusters.get(scope.cluster) as Cluster
    const { clock, readerRetryAfterMs } = this.#ctx.options
    const now = clock.now()
    if (cluster.readerDownUntil <= now) {
      this.#ctx.log.warn('reader unreachable: read-only calls go to the writer for now', {
        cluster: cluster.name,
        retryAfterMs: readerRetryAfterMs,
        sqlState: sqlState(err),
        error: err instanceof TenantPoolsError ? err.code : undefined,
      })
    }
    cluster.readerDownUntil = now + readerRetryAfterMs
    return this.#writerFor(scope, limits)
  }

  #writerFor(scope: Scope, limits: CallLimits): Scope {
    this.#ctx.counters.readerFallbacks++
    if (limits.measure) limits.measure.readerFallbacks++
    return this.#validated.variant(scope, scope.cluster, 'read-only')
  }
}

// The reader could not be reached or dropped the call: connecting failed, the connection died, or
// the replica is starting up or cancelled the read for a conflict with recovery.
const readerUnreachable = (err: unknown): boolean =>
  err instanceof ConnectError ||
  err instanceof ConnectionLostError ||
  isConnectionLost(err) ||
  sqlState(err) === '57P03' ||
  sqlState(err) === '40001'
