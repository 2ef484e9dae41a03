// What a registry reports: per scope, per login, totals, the budget, and counters since it was built.
// stats() builds all of it; the counters alone are a copy of one object (for per-request metrics).
import type { ConnectionBudget } from '../pool/budget'
import type { Cluster } from './clusters'
import type { Logins } from './logins'
import type { ScopeTable } from './scope-table'

/**
 * One scope in stats(): its key, tenant, app and cluster, and its connections (total, idle,
 * active), callers waiting, and when it was last used.
 *
 * @example
 * for (const s of pools.stats().scopes) log.info('scope', { key: s.key, active: s.active, waiting: s.waiting })
 */
export interface ScopeStats {
  /** The scope: `tenantId`, `tenantId:app`, or `$master`. */
  key: string
  tenantId: string | null
  app: string | null
  cluster: string
  readOnly: boolean
  /** Served by the cluster's reader endpoint. */
  onReader: boolean
  /** Connections bound to the scope: idle + active. */
  total: number
  /** Idle connections whose session is bound to the scope. */
  idle: number
  /** Connections the scope's calls hold. */
  active: number
  waiting: number
  lastUsedAt: number
}

/**
 * One login (endpoint, database, user) in stats(): the physical connections its scopes share.
 *
 * @example
 * const busy = pools.stats().logins.filter((l) => l.waiting > 0).map((l) => l.key)
 */
export interface LoginStats {
  /** `host:port/database|user` (or a scope of its own in proxy-safe mode). */
  key: string
  cluster: string
  /** A login to the cluster's reader endpoint. */
  reader: boolean
  total: number
  idle: number
  active: number
  waiting: number
  /** Each of its connections: the scope it is bound to, the distinct schemas it served, whether idle. */
  connections: ConnectionStats[]
}

/**
 * One physical connection in stats(): the scope its session is bound to, how many distinct schemas
 * it has served (it is closed at its release once that reaches maxSchemasPerConnection), and
 * whether it is idle.
 *
 * @example
 * const widest = Math.max(0, ...pools.stats().logins.flatMap((l) => l.connections.map((c) => c.schemasServed)))
 */
export interface ConnectionStats {
  scope: string
  schemasServed: number
  idle: boolean
}

/**
 * One cluster in stats(): its connections, its cap (`maxConnections`, null without one), and
 * whether its reader is being skipped after a failure.
 *
 * @example
 * const skipped = pools.stats().clusters.filter((c) => c.readerSkipped).map((c) => c.name)
 */
export interface ClusterStats {
  name: string
  total: number
  idle: number
  active: number
  waiting: number
  cap: number | null
  /** Its reader could not be reached lately: read-only calls go to its writer for now. */
  readerSkipped: boolean
}

/**
 * @deprecated Until the next minor version: the old name of ScopeStats.
 *
 * @example
 * const scopes: PoolStats[] = pools.stats().scopes // write ScopeStats instead
 */
export type PoolStats = ScopeStats

/**
 * What stats() returns: every scope, login and cluster, the totals, the environment's budget, and
 * the counters since the registry was built.
 *
 * @example
 * const { totals, budget } = pools.stats()
 * metrics.addMetric('connections', 'Count', totals.total)
 * if (budget.waiting > 0) log.warn('budget spent', { budget })
 */
export interface TenantPoolsStats {
  scopes: ScopeStats[]
  /** @deprecated Until the next minor version: the old name of `scopes` (the same array). */
  pools: ScopeStats[]
  logins: LoginStats[]
  /** Physical connections per cluster, and its cap (null: only the budget bounds it). */
  clusters: ClusterStats[]
  /** Physical connections (total, idle, active) and calls waiting, over every login. */
  totals: {
    scopes: number
    /** @deprecated Until the next minor version: the old name of `scopes`. */
    pools: number
    total: number
    idle: number
    active: number
    waiting: number
  }
  budget: { limit: number; used: number; waiting: number }
  counters: Counters
}

export const newCounters = () => ({
  scopesCreated: 0,
  /** Retired by LRU, past maxScopes. */
  scopesEvicted: 0,
  /** Retired by TTL, unused for scopeTtlMs. */
  scopesExpired: 0,
  connectionsOpened: 0,
  connectionsClosed: 0,
  connectionsReused: 0,
  /** Idle connections of a login bound to another scope, reset and rebound in one round trip. */
  connectionsRebound: 0,
  /** Sessions reset for the same scope after a caller may have left state in them. */
  sessionsReset: 0,
  /** Pinged on checkout because they had been idle longer than validateAfterIdleMs. */
  connectionsPinged: 0,
  /** Found dead on checkout (after a freeze, say) and replaced before the caller's statement ran. */
  connectionsReplaced: 0,
  /** Statements (or withClient/transaction callbacks) given up on client-side; their connection destroyed. */
  statementTimeouts: 0,
  /** Liveness pings (or resets) with no answer within validationTimeoutMs. */
  validationTimeouts: 0,
  /** Calls refused because their deadline had passed, or came while they waited for a connection. */
  deadlinesExceeded: 0,
  /** Closed at their release, having served maxSchemasPerConnection distinct schemas (the one kept open aside). */
  connectionsRetiredBySchemas: 0,
  connectionsLost: 0,
  serverKills: 0,
  connectFailures: 0,
  /** New connections refused with 28P01 and retried once with refreshed credentials. */
  credentialRefreshes: 0,
  acquireTimeouts: 0,
  /** Connection attempts the server refused as full (53300, 57P03) and retried after a backoff. */
  serverFullRetries: 0,
  /** Checkouts held longer than leakDetectionMs. */
  leaksSuspected: 0,
  /** Checkouts, and the milliseconds callers spent waiting for them in total. */
  checkouts: 0,
  acquireWaitMs: 0,
  /** Read-only calls served by the writer because the reader could not be reached. */
  readerFallbacks: 0,
})
/** The registry's own counters, as it bumps them. */
export type OwnCounters = ReturnType<typeof newCounters>

/**
 * What stats().counters and counters() report: the counters, and their old names for one minor
 * version.
 *
 * @example
 * const before = pools.counters()
 * await handle(event)
 * const opened = pools.counters().connectionsOpened - before.connectionsOpened
 */
export type Counters = OwnCounters & {
  /** @deprecated Until the next minor version: the old name of `scopesCreated`. */
  poolsCreated: number
  /** @deprecated Until the next minor version: the old name of `scopesEvicted`. */
  poolsEvicted: number
  /** @deprecated Until the next minor version: the old name of `scopesExpired`. */
  poolsExpired: number
}

/** A copy of `c`, with the old names beside the new. */
export const reported = (c: OwnCounters): Counters => ({
  ...c,
  poolsCreated: c.scopesCreated,
  poolsEvicted: c.scopesEvicted,
  poolsExpired: c.scopesExpired,
})

/** The registry's stats at `now`: every scope of `table`, every login and cluster of `logins`. */
export function statsOf(
  table: ScopeTable,
  logins: Logins,
  budget: ConnectionBudget,
  counters: OwnCounters,
  now: number,
): TenantPoolsStats {
  const scopes: ScopeStats[] = [...table.values()].map((u) => ({
    key: u.key,
    tenantId: u.scope.tenantId,
    app: u.scope.app,
    cluster: u.scope.cluster,
    readOnly: u.scope.readOnly,
    onReader: u.scope.onReader,
    total: u.idle + u.active,
    idle: u.idle,
    active: u.active,
    waiting: u.waiting,
    lastUsedAt: u.lastUsedAt,
  }))
  const perLogin: LoginStats[] = [...logins.values()].map((l) => ({
    key: l.key,
    cluster: logins.clusterNameOf(l),
    reader: logins.isReader(l),
    total: l.total,
    idle: l.idle,
    active: l.active,
    waiting: l.waiting,
    connections: l.connections(),
  }))
  const sum = (f: (l: LoginStats) => number) => perLogin.reduce((n, l) => n + f(l), 0)
  const clusters = [...logins.clusters.values()].map((c: Cluster): ClusterStats => {
    const of = perLogin.filter((l) => l.cluster === c.name)
    const add = (f: (l: LoginStats) => number) => of.reduce((n, l) => n + f(l), 0)
    return {
      name: c.name,
      total: add((l) => l.total),
      idle: add((l) => l.idle),
      active: add((l) => l.active),
      waiting: add((l) => l.waiting),
      cap: c.cap ?? null,
      readerSkipped: c.readerDownUntil > now,
    }
  })
  return {
    scopes,
    pools: scopes,
    logins: perLogin,
    clusters,
    totals: {
      scopes: scopes.length,
      pools: scopes.length,
      total: sum((l) => l.total),
      idle: sum((l) => l.idle),
      active: sum((l) => l.active),
      waiting: sum((l) => l.waiting),
    },
    budget: { limit: budget.limit, used: budget.used, waiting: budget.waiting },
    counters: reported(counters),
  }
}
