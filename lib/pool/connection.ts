// One physical connection as the pool sees it: the pg client plus the timestamps the pool's
// decisions need (lifetime, idle time), which scope its session is bound to and what the server
// reports of it, who holds it, and whether the socket is known to be dead.
import type { Client } from 'pg'
import type { ScopeUse } from './scope-use'

export class PooledConnection {
  readonly client: Client
  readonly createdAt: number
  /** When it was last freed: parked, or handed over (a new connection is handed over too). */
  idleSince = 0
  /** The registry's invocation count when it was last freed: freed in an earlier one, a freeze may lie between. */
  freedInInvocation = 0
  /** Checkouts it has served (0: opened for the checkout that gets it). */
  checkouts = 0
  /** Opened by a prewarm, for no call: its first checkout reuses it, it was not opened for it. */
  prewarmed = false
  /**
   * The distinct schemas of the scopes it was handed to: its backend keeps their catalog cache until
   * it exits. Bounds its life (maxSchemasPerConnection), and steers a scope back to it (affinity).
   */
  readonly schemasServed = new Set<string>()
  /** The socket reported an error or closed: never hand it out again. */
  lost = false
  /** The server's kill (57P01 …) a liveness check met as its answer: counted at the release. */
  killedBy: Error | undefined
  /** The scope whose search_path (and application_name) the session has. */
  boundTo: ScopeUse
  /** The scope of the call holding it, while checked out. */
  holder: ScopeUse | undefined
  /** Its session may carry a caller's state: reset before anyone uses it again. */
  needsReset = false
  /**
   * Opened for a read-only scope: its startup packet made it read-only, which RESET ALL returns to,
   * so every full reset for another scope sets writes back on explicitly.
   */
  readonly startedReadOnly: boolean
  /** Fires if the current holder keeps it past the leak threshold. */
  leakTimer: NodeJS.Timeout | undefined
  /**
   * The session's search_path as the server last reported it (ParameterStatus: PostgreSQL 18 and
   * later report it at startup and whenever a statement changed it). Undefined from a server that
   * does not report it: the binding is then asserted before each statement instead.
   */
  reportedSearchPath: string | undefined
  /**
   * A caller's statement ran since the search_path was last set, on a server that does not report
   * it: it may point anywhere now, and is asserted before the next statement.
   */
  searchPathUnknown = false
  /** In proxy-safe mode, where the role sets it: the search_path reported after the last reset. */
  searchPathAtBind: string | undefined
  /**
   * The scope the last reported search_path was found to select (undefined once another report
   * arrives): the warm path compares once per report, not once per checkout.
   */
  searchPathHoldsFor: ScopeUse | undefined
  /**
   * default_transaction_read_only as the server last reported it (PostgreSQL 14 and later report it):
   * a caller's RESET ALL returns it to the startup packet's value, which may be another scope's.
   */
  reportedReadOnly: string | undefined
  /** The scope the last reported default_transaction_read_only was found right for. */
  readOnlyHoldsFor: ScopeUse | undefined

  constructor(client: Client, now: number, boundTo: ScopeUse) {
    this.client = client
    this.createdAt = now
    this.boundTo = boundTo
    this.startedReadOnly = boundTo.leavesSettings
    // Listened to before connecting, so the startup report is seen. pg's Connection emits every
    // message by name; @types/pg does not declare it.
    const connection = (client as unknown as { connection?: NodeJS.EventEmitter }).connection
    connection?.on('parameterStatus', (msg: { parameterName: string; parameterValue: string }) => {
      if (msg.parameterName === 'default_transaction_read_only') {
        this.reportedReadOnly = msg.parameterValue
        this.readOnlyHoldsFor = undefined
      }
      if (msg.parameterName !== 'search_path') return
      // The first report is the startup's: the binding the connection was opened with.
      if (this.reportedSearchPath === undefined) this.searchPathAtBind = msg.parameterValue
      this.reportedSearchPath = msg.parameterValue
      this.searchPathHoldsFor = undefined
    })
  }

  /** True when the session cannot be reset and reused: lost, or in an open or failed transaction. */
  get dirty(): boolean {
    return this.lost || this.client.getTransactionStatus() !== 'I'
  }
}

/**
 * Ends a client, gracefully if the server answers within `timeoutMs`, otherwise by destroying the
 * socket: a peer that vanished (failover, a stopped process) would otherwise hold the close, and the
 * budget slot behind it, for as long as TCP retransmits. Never rejects.
 */
export function closeClient(client: Client, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      // pg has no public way to drop a socket without the goodbye; pg-pool reaches in the same way.
      ;(client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy()
      resolve()
    }, timeoutMs)
    client
      .end()
      .catch(() => {})
      .finally(() => {
        clearTimeout(timer)
        resolve()
      })
  })
}
