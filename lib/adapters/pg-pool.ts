// One tenant scope as a pg.Pool, for what takes one: Kysely's PostgresDialect, Drizzle's node-postgres
// driver, or any code written against pg. Every call goes through the registry (budget, per-scope
// limit, freeze-safe checkout, clean sessions, deadlines); the pg.Pool underneath never opens a
// connection of its own.
import {
  type ClientBase,
  Pool,
  type PoolClient,
  type QueryConfig,
  type QueryResult,
  type QueryResultRow,
} from 'pg'
import { cancelControlClient } from './cancel'

/**
 * One tenant's (or the master schema's) database: what `forTenant()` and `forMaster()` return, and
 * what handlers get as `context.db` and `context.readDb`. Every call takes a connection of the scope
 * from the registry (budget, per-scope limit, deadline) and gives it back when done.
 *
 * @example
 * const db: TenantDb = pools.forTenant('acme')
 * const { rows } = await db.query<{ id: string }>('SELECT id FROM orders WHERE status = $1', ['paid'])
 * await db.transaction(async (client) => {
 *   await client.query('UPDATE orders SET status = $1 WHERE id = $2', ['shipped', rows[0]?.id])
 * })
 */
export interface TenantDb {
  /**
   * Runs one statement on a pooled connection of the scope.
   *
   * @example
   * const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM orders')
   */
  query<R extends QueryResultRow = QueryResultRow>(text: string, values?: unknown[]): Promise<QueryResult<R>>
  /**
   * Lends a connection for several statements. It is destroyed, not reused, if `fn` throws.
   *
   * @example
   * const n = await db.withClient(async (client) => (await client.query('SELECT 1')).rowCount)
   */
  withClient<T>(fn: (client: ClientBase) => Promise<T>): Promise<T>
  /**
   * BEGIN … COMMIT around `fn`; ROLLBACK (and a destroyed connection) if it throws.
   *
   * @example
   * await db.transaction(async (client) => {
   *   await client.query('INSERT INTO orders (id) VALUES ($1)', [id])
   *   await client.query('INSERT INTO order_lines (order_id) VALUES ($1)', [id])
   * })
   */
  transaction<T>(fn: (client: ClientBase) => Promise<T>): Promise<T>
  /**
   * The scope as a `pg.Pool` (for Kysely, Drizzle, or code written against pg), with this handle's
   * limits on every call. See TenantPgPool. In a handler, `context.db.asPgPool()` is
   * `context.pgPool` (and `context.readDb.asPgPool()` its read-only twin): a connection of theirs
   * still held when the handler has answered is destroyed.
   *
   * @example
   * const kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool: db.asPgPool() }) })
   */
  asPgPool(): TenantPgPool
}

/**
 * The former name of {@link TenantDb}, which now has `asPgPool()` itself.
 *
 * @deprecated Use `TenantDb`; this alias goes in the next minor version.
 * @example
 * const db: TenantHandle = pools.forTenant('acme') // write `TenantDb` instead
 */
export type TenantHandle = TenantDb

/**
 * Told when a statement run by the handle's query() gets its connection, and when it gives it back.
 *
 * @internal The registry's, for TenantPgPool.
 */
export interface CheckoutObserver {
  acquired(client: PoolClient): void
  released(err: Error | undefined, client: PoolClient): void
}

/**
 * What the registry lends a handle: statements and leases of one scope.
 *
 * @internal Exported for the registry, which builds each TenantPgPool over one; users get a
 * TenantPgPool from `asPgPool()` and never need it.
 */
export interface ScopeRunner {
  query(
    query: string | QueryConfig,
    values: unknown[] | undefined,
    observer?: CheckoutObserver,
  ): Promise<QueryResult>
  /** A checked-out connection, with pg's `release(err?)`: an error (or `true`) destroys it. */
  lease(): Promise<PoolClient>
}

interface HandleState {
  runner: ScopeRunner
  leased: Set<PoolClient>
  observer: CheckoutObserver
}

// The state of each handle (module-level, not fields: the methods below are defined outside the
// class, see there).
const states = new WeakMap<TenantPgPool, HandleState>()

type PoolConfig = NonNullable<ConstructorParameters<typeof Pool>[0]>

/**
 * A `pg.Pool` whose connections are the registry's. `connect()` lends a connection of the scope
 * (release it; `release(err)` or `release(true)` destroys it), `query()` runs one statement, `end()`
 * ends nothing shared: the registry owns the connections, and the handle keeps working. It emits
 * pg-pool's `acquire` and `release` events for both. pg's own counters (`totalCount` …) stay 0; the
 * registry's `stats()` tells. Its `Client`, the class Kysely makes its control connection from,
 * cancels a statement of a connection this handle lent (cancel.ts). Made by `forTenant(…).asPgPool()`.
 *
 * @example
 * const pool = pools.forTenant('acme', { deadline }).asPgPool()
 * const kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) })
 * await kysely.selectFrom('orders').selectAll().execute()
 */
export class TenantPgPool extends Pool {
  /** @internal The registry's: get one from `asPgPool()` (a TenantDb's, or `context.pgPool`). */
  constructor(runner: ScopeRunner) {
    const leased = new Set<PoolClient>()
    // No connection settings: this pool never connects by itself.
    super({ max: 1, Client: cancelControlClient(leased) as unknown as PoolConfig['Client'] })
    const observer: CheckoutObserver = {
      acquired: (client) => this.emit('acquire', client),
      released: (err, client) => this.emit('release', err, client),
    }
    states.set(this, { runner, leased, observer })
  }

  /**
   * Connections lent by `connect()` and not yet released.
   *
   * @example
   * const client = await pool.connect()
   * pool.leased // 1, until client.release()
   */
  get leased(): number {
    return state(this).leased.size
  }

  /**
   * Destroys every connection lent and not yet released (the tenantDb middleware does it once the
   * handler has answered: no connection may outlive its invocation). Returns how many there were.
   *
   * @example
   * const destroyed = pool.reclaim() // 0 when every connect() was released
   */
  reclaim(): number {
    const { leased } = state(this)
    const n = leased.size
    for (const client of [...leased]) client.release(new Error('still held when the request ended'))
    return n
  }
}

const state = (pool: TenantPgPool) => states.get(pool) as HandleState

// Only when someone listens: the warm path calls nothing for events nobody hears.
const observed = (pool: TenantPgPool): CheckoutObserver | undefined =>
  pool.listenerCount('acquire') > 0 || pool.listenerCount('release') > 0 ? state(pool).observer : undefined

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
    // pg's own message; as a rejection, never a throw: callers await it.
    if (query === null || (typeof query !== 'string' && typeof query !== 'object')) {
      return Promise.reject(new TypeError('Client was passed a null or undefined query'))
    }
    if (typeof query !== 'string' && typeof (query as { submit?: unknown }).submit === 'function') {
      return Promise.reject(
        new TypeError('TenantPgPool.query takes no Submittable (cursor, stream): use connect()'),
      )
    }
    return state(this).runner.query(query, values as unknown[] | undefined, observed(this))
  },
  async connect(this: TenantPgPool, callback?: unknown) {
    refuseCallback('connect', callback)
    const { runner, leased } = state(this)
    const client = await runner.lease()
    const release = client.release
    leased.add(client)
    client.release = (err?: Error | boolean) => {
      // A second release: the registry's own refusal, with no event.
      if (!leased.delete(client)) return release(err)
      // As pg-pool: the event before the client goes back (or is destroyed).
      this.emit('release', err instanceof Error ? err : undefined, client)
      release(err)
    }
    this.emit('acquire', client)
    return client
  },
  end(this: TenantPgPool, callback?: unknown) {
    refuseCallback('end', callback)
    return Promise.resolve()
  },
} satisfies Partial<Record<keyof Pool, unknown>>)
