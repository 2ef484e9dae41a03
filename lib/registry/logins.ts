// The logins a registry connects with: a scope's login (the endpoint, database and user it connects
// with) found on its first checkout, from the credentials provider or, without one, known at once;
// the login pools themselves, their cluster, and which are readers'. Scopes of one login share its
// connections. In proxy-safe mode the role carries the schema, so each scope is a login of its own,
// and each new connection's schema is verified. Also what is done to every login at once: free a
// budget slot, close the idle, sweep, end.
import type { Client, QueryConfig } from 'pg'
import type { TenantPoolsOptions } from '../config/options'
import { ConnectError, CredentialsError, PoolsEndedError } from '../errors'
import type { ConnectionBudget } from '../pool/budget'
import { connector, credentialsRequest } from '../pool/connector'
import { LoginPool } from '../pool/login-pool'
import type { ScopeUse } from '../pool/scope-use'
import { within } from '../pool/within'
import type { CallLimits, PoolEvents, Scope } from '../types'
import { buildClusters, type Cluster, type Endpoint } from './clusters'
import type { RegistryContext } from './context'
import { poolEvents } from './pool-events'
import { RoleLookup } from './role-lookup'

// How old an answer to "has this tenant a role of its own" may be before it is looked up again (in
// the background: role-lookup.ts).
const ROLE_LOOKUP_MAX_AGE_MS = 60_000

export class Logins {
  /** The clusters, by name; the main one first. */
  readonly clusters: ReadonlyMap<string, Cluster>
  readonly #ctx: RegistryContext
  readonly #byKey = new Map<string, LoginPool>()
  // The login each scope in use connects with, found on its first checkout.
  readonly #loginOf = new WeakMap<ScopeUse, LoginPool>()
  // The cluster of each login.
  readonly #clusterOf = new WeakMap<LoginPool, Cluster>()
  readonly #readers = new WeakSet<LoginPool>()
  readonly #events: PoolEvents
  readonly #roles: RoleLookup

  /** `roleQuery`: whether a role of that name exists, asked on the main cluster (its master schema). */
  constructor(
    ctx: RegistryContext,
    options: TenantPoolsOptions,
    budget: ConnectionBudget,
    roleQuery: (role: string) => Promise<boolean>,
  ) {
    this.#ctx = ctx
    this.clusters = buildClusters(
      options,
      ctx.options,
      budget,
      (cluster) => this.freeIdleSlot(cluster),
      (name) => this.#roleExists(name),
    )
    this.#events = poolEvents(ctx.counters, ctx.log, () => this.closeIdle())
    this.#roles = new RoleLookup(roleQuery, ROLE_LOOKUP_MAX_AGE_MS, ctx.options.clock)
  }

  /** Every login pool. */
  values(): IterableIterator<LoginPool> {
    return this.#byKey.values()
  }

  /** The login `use` connects with, if known without waiting: found before, or static. */
  of(use: ScopeUse): LoginPool | undefined {
    return this.#loginOf.get(use) ?? this.#staticLogin(use)
  }

  /** The login `use` was attached to, if any. */
  loginOf(use: ScopeUse): LoginPool | undefined {
    return this.#loginOf.get(use)
  }

  clusterNameOf(login: LoginPool): string {
    return this.#clusterOf.get(login)?.name ?? this.#ctx.options.mainCluster
  }

  isReader(login: LoginPool): boolean {
    return this.#readers.has(login)
  }

  // A scope's login: the endpoint, database and user it connects with. Scopes of one login share its
  // connections. In proxy-safe mode the role carries the schema, so each scope is a login of its own.
  // The user comes from the credentials provider (cached there), asked once per scope.
  async find(use: ScopeUse, limits: CallLimits): Promise<LoginPool> {
    const o = this.#ctx.options
    const { cluster, endpoint } = this.#endpointOf(use)
    let key: string
    if (o.proxySafe) {
      key = `${endpoint.address}|scope:${use.key}`
    } else {
      let user: string
      // Bounded as a connect is: a provider that never answers must not hold the caller.
      const ms = Math.min(o.connectTimeoutMs, this.#ctx.remaining(limits, 'it got a connection'))
      let slow: ConnectError | undefined
      const tooSlow = () => {
        slow = new ConnectError(
          `Opening a connection for pool ${use.key} took longer than ${Math.round(ms)} ms: the credentials provider did not answer`,
        )
        return slow
      }
      try {
        ;({ user } = await within(
          endpoint.factory.credentials(credentialsRequest(use.scope, endpoint.factory)),
          ms,
          tooSlow,
        ))
      } catch (err) {
        if (slow !== undefined && err === slow) throw err
        throw new CredentialsError(`The credentials provider failed for pool ${use.key}`, { cause: err })
      }
      key = `${endpoint.address}|${user}`
    }
    if (this.#ctx.ended) throw new PoolsEndedError('TenantPools has been ended: build a new instance')
    return this.#attach(use, key, cluster, endpoint)
  }

  // The budget (or a cluster's cap) is spent and a login needs a connection: close the connection
  // idle longest, of any login (of that cluster).
  freeIdleSlot(cluster?: string): void {
    let victim: LoginPool | undefined
    for (const login of this.#byKey.values()) {
      if (cluster !== undefined && this.#clusterOf.get(login)?.name !== cluster) continue
      const since = login.oldestIdleSince
      if (since !== undefined && (victim === undefined || since < (victim.oldestIdleSince as number))) {
        victim = login
      }
    }
    victim?.closeOldestIdle()
  }

  /** Closes every login's idle connections; returns how many. */
  closeIdle(): number {
    let closed = 0
    for (const login of this.#byKey.values()) closed += login.closeIdle()
    return closed
  }

  /** Closes idle connections past their idle timeout or lifetime, in every login. */
  sweep(now: number): void {
    for (const login of this.#byKey.values()) login.sweep(now)
  }

  // A login no scope uses any more, with nothing open, is forgotten (per-tenant roles come and go).
  forgetUnused(uses: Iterable<ScopeUse>): void {
    const inUse = new Set<LoginPool>()
    for (const use of uses) {
      const login = this.#loginOf.get(use)
      if (login) inUse.add(login)
    }
    for (const [key, login] of this.#byKey) {
      if (!inUse.has(login) && login.quiet && login.total === 0) {
        this.#byKey.delete(key)
        this.#ctx.drain(login.end())
      }
    }
  }

  /** Ends every login: their sockets close (end() waits, through the context's draining). */
  end(): void {
    for (const login of this.#byKey.values()) this.#ctx.drain(login.end())
    this.#byKey.clear()
  }

  // Whether a role named `name` exists. Asked on the main cluster, where a tenant's own role is
  // made: a credentials provider must not let such a tenant borrow a shared login.
  #roleExists(name: string): Promise<boolean> {
    return this.#roles.exists(name)
  }

  // The cluster a scope connects to, and which of its endpoints.
  #endpointOf(use: ScopeUse): { cluster: Cluster; endpoint: Endpoint } {
    const cluster = this.clusters.get(use.scope.cluster) as Cluster
    const endpoint = use.scope.onReader ? (cluster.reader as Endpoint) : cluster.writer
    return { cluster, endpoint }
  }

  // Without a credentials provider every scope logs in as the configured user: one login, known
  // without asking anyone.
  #staticLogin(use: ScopeUse): LoginPool | undefined {
    const { cluster, endpoint } = this.#endpointOf(use)
    if (endpoint.staticLoginKey === undefined) return undefined
    return this.#attach(use, endpoint.staticLoginKey, cluster, endpoint)
  }

  // The scope connects through login `key` from now on (made on first use).
  #attach(use: ScopeUse, key: string, cluster: Cluster, endpoint: Endpoint): LoginPool {
    const login = this.#byKey.get(key) ?? this.#newLogin(key, cluster, endpoint)
    this.#loginOf.set(use, login)
    return login
  }

  #newLogin(key: string, cluster: Cluster, endpoint: Endpoint): LoginPool {
    const ctx = this.#ctx
    const o = ctx.options
    const login = new LoginPool({
      key,
      maxPerScope: o.maxPerScope,
      idleTimeoutMs: o.idleTimeoutMs,
      maxLifetimeMs: o.maxLifetimeMs,
      maxSchemasPerConnection: o.maxSchemasPerConnection,
      keepFullConnection: o.keepFullConnection,
      connectTimeoutMs: o.connectTimeoutMs,
      budget: cluster.budget,
      clock: o.clock,
      events: this.#events,
      invocation: () => ctx.invocation,
      createClient: connector(endpoint.factory),
      verify: o.proxySafe ? (client, use) => this.#verifySchema(client, use.scope) : undefined,
    })
    this.#byKey.set(key, login)
    this.#clusterOf.set(login, cluster)
    if (endpoint === cluster.reader) this.#readers.add(login)
    return login
  }

  // In proxy-safe mode the search_path comes from the role (ALTER ROLE … SET search_path). Refuse a
  // connection whose role would put the caller in another schema: isolation must not depend on luck.
  async #verifySchema(client: Client, scope: Scope): Promise<void> {
    // pg honours a per-query query_timeout; @types/pg does not declare it.
    const check: QueryConfig & { query_timeout: number } = {
      text: 'SELECT current_schema() AS schema',
      query_timeout: this.#ctx.options.connectTimeoutMs,
    }
    const { rows } = await client.query<{ schema: string | null }>(check)
    if (rows[0]?.schema !== scope.schema) {
      throw new ConnectError(
        `Proxy-safe mode: the role's search_path does not select schema ${scope.schema} for pool ${scope.key}. ` +
          'Run ALTER ROLE <role> SET search_path = <schema> for the role this pool logs in as.',
      )
    }
  }
}
