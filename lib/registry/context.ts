// What the registry's collaborators share (logins, the scope table, readers, checkout, calls, and
// readiness below them): the resolved options, the log and the counters, and the little mutable
// state that belongs to none of them alone: the invocation count, whether the registry has ended,
// the sockets end() waits for, and the deadline check every step of a call makes. One object, built
// once and passed to each when it is built: the warm path reads a field of it, nothing more.

import type { resolveOptions } from '../config/options'
import { DeadlineExceededError } from '../errors'
import type { ReadinessContext } from '../pool/readiness'
import type { CallLimits, Log } from '../types'
import { newCounters } from './stats'

export type ResolvedOptions = ReturnType<typeof resolveOptions>

export class RegistryContext implements ReadinessContext {
  readonly options: ResolvedOptions
  readonly log: Log
  readonly counters = newCounters()
  // Invocations started (invocationStarted): a connection freed in an earlier one may have been
  // frozen since, however short the freeze, and always waits for pending socket events.
  invocation = 0
  // end() was called: no checkout starts, no login is made.
  ended = false
  // Scopes removed (evicted, expired) and logins ended whose sockets are still closing: end() waits.
  readonly draining = new Set<Promise<void>>()

  constructor(options: ResolvedOptions, log: Log) {
    this.options = options
    this.log = log
  }

  /**
   * Milliseconds left before the call's deadline (Infinity without one). Throws once it has passed
   * or the signal is aborted: nothing more of the call may start.
   */
  remaining(limits: CallLimits, what: string): number {
    if (limits.signal?.aborted) {
      this.counters.deadlinesExceeded++
      throw new DeadlineExceededError(`The call was aborted before ${what}`)
    }
    if (limits.deadline === undefined) return Number.POSITIVE_INFINITY
    const left = limits.deadline - this.options.clock.now()
    if (left <= 0) {
      this.counters.deadlinesExceeded++
      throw new DeadlineExceededError(`The call's deadline passed before ${what}`)
    }
    return left
  }

  /** `ended` settles when sockets have closed; end() waits for it. */
  drain(ended: Promise<void>): Promise<void> {
    this.draining.add(ended)
    void ended.then(() => this.draining.delete(ended))
    return ended
  }
}
