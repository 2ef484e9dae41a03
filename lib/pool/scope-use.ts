// A scope's use of its login's connections: the per-scope limit on connections in use, the counts
// its stats report, and its waiters' bookkeeping. The connections themselves belong to the login.

import type { Scope } from '../types'
import { type Binding, resetStatements, searchPathStatement } from './session'

// Orders uses exactly: two scopes used within the same millisecond still have an LRU order.
let uses = 0

export class ScopeUse {
  readonly scope: Scope
  readonly binding: Binding
  /** The statement that asserts this scope's search_path before a statement (same scope, unverified). */
  readonly assertStatements: string[]
  // The reset forms are built on first use: many scopes (LRU churn) only ever arrive by a reset.
  #resetStatements: string[] | undefined
  #resetFromReadOnlyStatements: string[] | undefined
  #resetSql: string | undefined
  #resetFromReadOnlySql: string | undefined
  /** Connections this scope's calls hold. At most the registry's maxPerScope. */
  active = 0
  /** Idle connections whose session is bound to this scope: taking one needs no reset. */
  idle = 0
  /** Calls of this scope waiting for a connection. */
  waiting = 0
  /** Calls of this scope on their way to the login pool (finding the login): not quiet yet. */
  arriving = 0
  lastUsedAt: number
  /** Increases with every use of any scope: the LRU order. */
  lastUse = 0
  /**
   * Its binding sets more than every binding does (read-only sessions): a reset into it never rides
   * with a statement (its SET reaches only the next transaction), and a reset out of it gives writes
   * back explicitly.
   */
  readonly leavesSettings: boolean
  /** Evicted or expired: its connections close when freed, and its waiters were refused. */
  ended = false
  // Resolved once no call holds a connection of this scope and its closing sockets are closed.
  readonly #drained: Array<() => void> = []
  #closing = 0

  constructor(scope: Scope, applicationName: string, now: number) {
    this.scope = scope
    this.leavesSettings = scope.readOnly && !scope.onReader
    this.binding = { schema: scope.schema, applicationName, readOnly: this.leavesSettings }
    this.assertStatements = [searchPathStatement(scope.schema)]
    this.lastUsedAt = now
  }

  /**
   * The statements that discard whatever the session holds and bind it to this scope.
   * `fromReadOnly`: the connection was opened for, or bound to, a read-only scope.
   */
  resetStatements(fromReadOnly: boolean): string[] {
    if (fromReadOnly) {
      this.#resetFromReadOnlyStatements ??= resetStatements(this.binding, true)
      return this.#resetFromReadOnlyStatements
    }
    this.#resetStatements ??= resetStatements(this.binding, false)
    return this.#resetStatements
  }

  /** resetStatements as one simple query. */
  resetSql(fromReadOnly: boolean): string {
    if (fromReadOnly) {
      this.#resetFromReadOnlySql ??= this.resetStatements(true).join('; ')
      return this.#resetFromReadOnlySql
    }
    this.#resetSql ??= this.resetStatements(false).join('; ')
    return this.#resetSql
  }

  get key(): string {
    return this.scope.key
  }

  /** Records a use at `now` (a checkout or a release). */
  touch(now: number): void {
    this.lastUsedAt = now
    this.lastUse = ++uses
  }

  /** No call holds or awaits a connection. */
  get quiet(): boolean {
    return this.active === 0 && this.waiting === 0 && this.arriving === 0
  }

  /** A socket of this scope's started closing; `closed` settles when it has. */
  closing(closed: Promise<unknown>): void {
    this.#closing++
    const done = () => {
      this.#closing--
      this.checkDrained()
    }
    closed.then(done, done)
  }

  /** Resolves when no call holds one of this scope's connections and none of its sockets is closing. */
  drained(): Promise<void> {
    // The usual case of an LRU or TTL retirement: nothing to wait for.
    if (this.active === 0 && this.#closing === 0) {
      this.checkDrained()
      return DRAINED
    }
    return new Promise((resolve) => {
      this.#drained.push(resolve)
      this.checkDrained()
    })
  }

  checkDrained(): void {
    if (this.active === 0 && this.#closing === 0) for (const resolve of this.#drained.splice(0)) resolve()
  }
}

const DRAINED: Promise<void> = Promise.resolve()
