// One tenant scope as a pg.Pool, for what takes one: Kysely's PostgresDialect, Drizzle's node-postgres
// driver, or any code written against pg. Every call goes through the registry (budget, per-scope
// limit, freeze-safe checkout, clean sessions, deadlines); the pg.Pool underneath never opens a
// connection of its own.
import { Pool, type PoolClient, type QueryConfig, type QueryResult } from 'pg'

/** What the registry lends a handle: statements and leases of one scope. */
export interface ScopeRunner {
  query(query: string | QueryConfig, values: unknown[] | undefined): Promise<QueryResult>
  /** A checked-out connection, with pg's `release(err?)`: an error (or `true`) destroys it. */
  lease(): Promise<PoolClient>
}

// The runner of each handle (module-level, not a field: the methods below are defined outside the
// class, see there).
const runners = new WeakMap<TenantPgPool, { runner: ScopeRunner; leased: Set<PoolClient> }>()

/**
 * A `pg.Pool` whose connections are the registry's. `connect()` lends a connection of the scope
 * (release it; `release(err)` or `release(true)` destroys it), `query()` runs one statement, `end()`
 * ends nothing shared: the registry owns the connections, and the handle keeps working. pg's own
 * counters (`totalCount` …) stay 0; the registry's `stats()` tells. Made by `forTenant(…).asPgPool()`.
 */
export class TenantPgPool extends Pool {
  constructor(runner: ScopeRunner) {
    // No connection settings: this pool never connects by itself.
    super({ max: 1 })
    runners.set(this, { runner, leased: new Set() })
  }

  /** Connections lent by `connect()` and not yet released. */
  get leased(): number {
    return state(this).leased.size
  }

  /**
   * Destroys every connection lent and not yet released (the tenantDb middleware does it once the
   * handler has answered: no connection may outlive its invocation). Returns how many there were.
   */
  reclaim(): number {
    const { leased } = state(this)
    const n = leased.size
    for (const client of [...leased]) client.release(new Error('still held when the request ended'))
    return n
  }
}

const state = (pool: TenantPgPool) => runners.get(pool) as { runner: ScopeRunner; leased: Set<PoolClient> }

// pg's overloads (callbacks, Submittable streams) cannot all be restated in a subclass: the methods
// are put on the prototype as implementations of pg's declared types. They serve the promise forms,
// the ones Kysely, Drizzle and async code use, and refuse callbacks plainly.
const refuseCallback = (what: string, callback: unknown) => {
  if (typeof callback === 'function') {
    throw new TypeError(`TenantPgPool.${what} takes no callback: use the promise it returns`)
  }
}

Object.assign(TenantPgPool.prototype, {
  query(this: TenantPgPool, query: string | QueryConfig, values?: unknown) {
    refuseCallback('query', values)
    if (typeof query !== 'string' && typeof (query as { submit?: unknown }).submit === 'function') {
      return Promise.reject(
        new TypeError('TenantPgPool.query takes no Submittable (cursor, stream): use connect()'),
      )
    }
    return state(this).runner.query(query, values as unknown[] | undefined)
  },
  async connect(this: TenantPgPool, callback?: unknown) {
    refuseCallback('connect', callback)
    const { runner, leased } = state(this)
    const client = await runner.lease()
    const release = client.release
    leased.add(client)
    client.release = (err?: Error | boolean) => {
      leased.delete(client)
      release(err)
    }
    return client
  },
  end(this: TenantPgPool, callback?: unknown) {
    refuseCallback('end', callback)
    return Promise.resolve()
  },
} satisfies Partial<Record<keyof Pool, unknown>>)
