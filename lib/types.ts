// Narrow interfaces the library depends on, so tests can pass trivial fakes.
import type { ClientBase, QueryResult, QueryResultRow } from 'pg'

export interface Credentials {
  user: string
  password: string
}

/** Called for every new connection, so rotated credentials apply without rebuilding pools. */
export type CredentialsProvider = () => Promise<Credentials>

export interface Clock {
  now(): number
}

export const systemClock: Clock = { now: () => Date.now() }

/** The slice of a logger the library uses; Powertools Logger satisfies it. */
export interface Log {
  debug(message: string, ...extra: Record<string, unknown>[]): void
  info(message: string, ...extra: Record<string, unknown>[]): void
  warn(message: string, ...extra: Record<string, unknown>[]): void
  error(message: string, ...extra: Record<string, unknown>[]): void
}

/** What a pool reports to its registry, which keeps the counters and the log. */
export interface PoolEvents {
  opened(): void
  closed(): void
  reused(): void
  acquireTimedOut(): void
  connectFailed(err: Error): void
  lost(key: string, err: Error): void
}

export interface ScopeOptions {
  /** A separate pool per app of a tenant (web, mobile …): the key becomes `tenantId:app`. */
  app?: string
}

/** One tenant's (or the master schema's) database, as handlers see it. */
export interface TenantDb {
  query<R extends QueryResultRow = QueryResultRow>(text: string, values?: unknown[]): Promise<QueryResult<R>>
  withClient<T>(fn: (client: ClientBase) => Promise<T>): Promise<T>
  transaction<T>(fn: (client: ClientBase) => Promise<T>): Promise<T>
}
