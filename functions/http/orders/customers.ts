// GET /orders/customers: each customer's orders and spend, written with Kysely instead of SQL
// strings (docs/using.md, "Kysely or Drizzle"). The query builder runs on the tenant's pg.Pool handle
// (context.pgPool): the registry's checkout, limits and clean sessions apply as to raw SQL.
import { Kysely, PostgresDialect } from 'kysely'
import { jsonResponse, type TenantPgPool } from '../../../lib'
import { jsonInteger } from '../../shared/json-integer'
import { tenantHandler } from '../../shared/tenant-handler'
import type { TenantDatabase } from './db-types'

// One Kysely per request: it is a thin wrapper (no connection of its own), and the request's pool
// handle carries the request's deadline.
const kyselyOn = (pool: TenantPgPool) =>
  new Kysely<TenantDatabase>({ dialect: new PostgresDialect({ pool }) })

export const customers = tenantHandler(async (_event, { pgPool }) => {
  const rows = await kyselyOn(pgPool)
    .selectFrom('orders')
    .where('deleted_at', 'is', null)
    .groupBy('customer')
    .select((eb) => [
      'customer',
      eb.fn.countAll<string>().as('orders'),
      eb.fn.sum<string>('total_cents').as('spentCents'),
    ])
    .orderBy('customer')
    .execute()
  return jsonResponse(200, {
    items: rows.map((r) => ({
      customer: r.customer,
      orders: Number(r.orders),
      spentCents: jsonInteger(r.spentCents),
    })),
  })
})
