// The orders schema as Kysely sees it, in the shape kysely-codegen generates from a live database
// (`npx kysely-codegen --include-pattern 'tenant_acme.*'`): one interface per table, Generated<>
// for columns the database fills in. Kept by hand here, in step with migrations/tenant/.
import type { ColumnType, Generated } from 'kysely'

export type Timestamp = ColumnType<Date, Date | string, Date | string>
// bigint: pg returns int8 as a string unless told otherwise.
export type Int8 = ColumnType<string, bigint | number | string, bigint | number | string>

export interface Orders {
  id: Generated<string>
  reference: string | null
  customer: string
  status: Generated<'pending' | 'paid' | 'shipped' | 'cancelled'>
  total_cents: Int8
  version: Generated<number>
  created_at: Generated<Timestamp>
  updated_at: Generated<Timestamp>
  deleted_at: Timestamp | null
}

export interface OrderLines {
  order_id: string
  line_no: number
  sku: string
  quantity: number
  unit_cents: Int8
}

/** A tenant's schema: the search_path of its connections selects it, so tables go unqualified. */
export interface TenantDatabase {
  orders: Orders
  order_lines: OrderLines
}
