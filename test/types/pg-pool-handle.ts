// Type-level test, checked by `npm run typecheck` (tsc) and never run: the handle from asPgPool()
// is accepted, with no cast, where Kysely and Drizzle take a node-postgres pool.
import { drizzle } from 'drizzle-orm/node-postgres'
import { PostgresDialect, type PostgresPool } from 'kysely'
import type { Pool } from 'pg'
import type { TenantDb, TenantPgPool } from '../../lib'

declare const handle: TenantPgPool
declare const tenantDb: TenantDb

export const asKyselyPool: PostgresPool = handle
export const dialect = new PostgresDialect({ pool: handle })
export const dialectFromFactory = new PostgresDialect({ pool: async () => handle })
export const withClientOption = drizzle({ client: handle })
export const positional = drizzle(handle)
export const asPgPool: Pool = handle
// A TenantDb (forTenant, forMaster, context.db) gives its pg.Pool.
export const fromTenantDb: Pool = tenantDb.asPgPool()

// The check can fail: what is not a pool is refused.
// @ts-expect-error: a TenantDb has no connect() or end()
export const refused = new PostgresDialect({ pool: tenantDb })
