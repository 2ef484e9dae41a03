// Orders SQL. Every statement runs on the tenant's own connection, so names are unqualified.

import { HttpError, type TenantDb } from '../../../lib'
import type * as z from '../../../lib/zod'
import { decodeCursor, encodeCursor } from '../../shared/cursor'
import { jsonInteger } from '../../shared/json-integer'
import { type createOrderBody, orderId } from './schema'

export interface OrderRow {
  id: string
  reference: string | null
  customer: string
  status: string
  total_cents: string
  version: number
  created_at: Date
  updated_at: Date
}

export const toOrder = (r: OrderRow) => ({
  id: r.id,
  reference: r.reference,
  customer: r.customer,
  status: r.status,
  totalCents: Number(r.total_cents),
  version: r.version,
  createdAt: r.created_at.toISOString(),
  updatedAt: r.updated_at.toISOString(),
})

const COLUMNS = 'id, reference, customer, status, total_cents, version, created_at, updated_at'

export async function createOrder(db: TenantDb, input: z.infer<ReturnType<typeof createOrderBody>>) {
  return db.transaction(async (client) => {
    const total = input.lines.reduce((sum, l) => sum + l.quantity * l.unitCents, 0)
    const { rows } = await client.query<OrderRow>(
      `INSERT INTO orders (reference, customer, total_cents) VALUES ($1, $2, $3) RETURNING ${COLUMNS}`,
      [input.reference ?? null, input.customer, total],
    )
    const order = rows[0] as OrderRow
    // One statement for all lines: unnest keeps it a single round trip.
    await client.query(
      `INSERT INTO order_lines (order_id, line_no, sku, quantity, unit_cents)
       SELECT $1, n, sku, quantity, unit_cents
         FROM unnest($2::text[], $3::int[], $4::bigint[]) WITH ORDINALITY AS l(sku, quantity, unit_cents, n)`,
      [
        order.id,
        input.lines.map((l) => l.sku),
        input.lines.map((l) => l.quantity),
        input.lines.map((l) => l.unitCents),
      ],
    )
    return { ...toOrder(order), lines: input.lines }
  })
}

export async function getOrder(db: TenantDb, id: string) {
  const [order, lines] = await Promise.all([
    db.query<OrderRow>(`SELECT ${COLUMNS} FROM orders WHERE id = $1 AND deleted_at IS NULL`, [id]),
    db.query<{ sku: string; quantity: number; unit_cents: string }>(
      'SELECT sku, quantity, unit_cents FROM order_lines WHERE order_id = $1 ORDER BY line_no',
      [id],
    ),
  ])
  const row = order.rows[0]
  if (!row) throw new HttpError(404, 'NOT_FOUND', 'No such order')
  return {
    ...toOrder(row),
    lines: lines.rows.map((l) => ({ sku: l.sku, quantity: l.quantity, unitCents: Number(l.unit_cents) })),
  }
}

// The cursor is opaque to callers: the (created_at, id) of the last row, base64url encoded. The time
// travels as text with microseconds: a JS Date keeps milliseconds only, and rows created within the
// same millisecond would be skipped.
const CURSOR_AT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/

const cursorKey = (decoded: unknown): [string, string] | undefined => {
  const [at, id] = decoded as unknown[]
  return typeof at === 'string' && CURSOR_AT.test(at) && orderId().safeParse(id).success
    ? [at, id as string]
    : undefined
}

export async function listOrders(db: TenantDb, limit: number, cursor?: string, reference?: string) {
  const after = cursor ? decodeCursor(cursor, cursorKey) : undefined
  const { rows } = await db.query<OrderRow & { cursor_at: string }>(
    `SELECT ${COLUMNS}, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cursor_at
       FROM orders
      WHERE deleted_at IS NULL AND ($1::timestamptz IS NULL OR (created_at, id) < ($1::timestamptz, $2::uuid))
        AND ($4::text IS NULL OR reference = $4)
      ORDER BY created_at DESC, id DESC
      LIMIT $3`,
    [after?.[0] ?? null, after?.[1] ?? null, limit + 1, reference ?? null],
  )
  const page = rows.slice(0, limit)
  const last = page[page.length - 1]
  return {
    items: page.map(toOrder),
    nextCursor: rows.length > limit && last ? encodeCursor([last.cursor_at, last.id]) : null,
  }
}

export async function updateStatus(db: TenantDb, id: string, status: string, version: number) {
  const { rows } = await db.query<OrderRow>(
    `UPDATE orders SET status = $2, version = version + 1, updated_at = clock_timestamp()
      WHERE id = $1 AND version = $3 AND deleted_at IS NULL
      RETURNING ${COLUMNS}`,
    [id, status, version],
  )
  if (rows[0]) return toOrder(rows[0])
  const { rows: current } = await db.query<{ version: number }>(
    'SELECT version FROM orders WHERE id = $1 AND deleted_at IS NULL',
    [id],
  )
  if (!current[0]) throw new HttpError(404, 'NOT_FOUND', 'No such order')
  throw new HttpError(
    409,
    'VERSION_CONFLICT',
    `The order is at version ${current[0].version}, not ${version}`,
  )
}

export async function softDelete(db: TenantDb, id: string) {
  const { rowCount } = await db.query(
    'UPDATE orders SET deleted_at = clock_timestamp() WHERE id = $1 AND deleted_at IS NULL',
    [id],
  )
  if (!rowCount) throw new HttpError(404, 'NOT_FOUND', 'No such order')
}

/** Two queries in parallel on the tenant's pool. */
export async function orderStats(db: TenantDb) {
  const [byStatus, totals] = await Promise.all([
    db.query<{ status: string; n: string }>(
      'SELECT status, count(*) AS n FROM orders WHERE deleted_at IS NULL GROUP BY status ORDER BY status',
    ),
    db.query<{ orders: string; revenue: string | null }>(
      'SELECT count(*) AS orders, sum(total_cents) AS revenue FROM orders WHERE deleted_at IS NULL',
    ),
  ])
  return {
    byStatus: Object.fromEntries(byStatus.rows.map((r) => [r.status, Number(r.n)])),
    orders: Number(totals.rows[0]?.orders ?? 0),
    revenueCents: jsonInteger(totals.rows[0]?.revenue),
  }
}
