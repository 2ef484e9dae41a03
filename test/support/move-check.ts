// What a tenant move must leave behind, checked straight on the servers (not through the code under
// test): the rows on exactly one cluster, the catalog naming it, no claim and no fence; and whether
// an answer of moveTenant told the truth about that.
import type { Client } from 'pg'
import type { MoveReport } from '../../functions/admin/move'
import { clusterBUrl, databaseUrl, onServer } from './db'

export const clusterUrls: Record<string, () => string> = { main: databaseUrl, b: clusterBUrl }

/** Rows of a tenant's two tables on one cluster: counts and checksums, or undefined without schema. */
export interface Fingerprint {
  orders: string
  lines: string
}

/** Adds `n` orders of one line each to a tenant on the main cluster: a copy of measurable length. */
export async function seedOrders(id: string, n: number): Promise<void> {
  await onServer(databaseUrl(), async (c) => {
    await c.query(
      `INSERT INTO tenant_${id}.orders (reference, customer, total_cents)
       SELECT 'r' || g, 'customer ' || (g % 97), g FROM generate_series(1, $1::int) AS g`,
      [n],
    )
    await c.query(
      `INSERT INTO tenant_${id}.order_lines (order_id, line_no, sku, quantity, unit_cents)
       SELECT id, 1, 'sku-' || total_cents, 1 + total_cents % 5, total_cents FROM tenant_${id}.orders`,
    )
  })
}

const sumOf = async (c: Client, table: string): Promise<string> => {
  const { rows } = await c.query<{ n: string; sum: string }>(
    `SELECT count(*)::text AS n, coalesce(md5(string_agg(md5(t::text), '' ORDER BY md5(t::text))), '') AS sum
     FROM ${table} AS t`,
  )
  return `${rows[0]?.n}:${rows[0]?.sum}`
}

export function fingerprint(cluster: string, id: string): Promise<Fingerprint | undefined> {
  return onServer(clusterUrls[cluster]?.() ?? '', async (c) => {
    const { rows } = await c.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [`tenant_${id}`])
    if (rows.length === 0) return undefined
    // The same text for the same row on both servers.
    await c.query(`SET TimeZone = 'UTC'`)
    return {
      orders: await sumOf(c, `tenant_${id}.orders`),
      lines: await sumOf(c, `tenant_${id}.order_lines`),
    }
  })
}

/**
 * What a move leaves in the tenant's schema on one cluster while it runs: fence and change-capture
 * triggers, their functions, and the change log.
 */
export function fencesOn(cluster: string, id: string): Promise<number> {
  return onServer(clusterUrls[cluster]?.() ?? '', async (c) => {
    const { rows } = await c.query<{ n: number }>(
      `SELECT (SELECT count(*) FROM pg_trigger t JOIN pg_class r ON r.oid = t.tgrelid
                JOIN pg_namespace n ON n.oid = r.relnamespace
               WHERE n.nspname = $1 AND t.tgname LIKE 'tenant\\_pools\\_%')
            + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
               WHERE n.nspname = $1 AND p.proname LIKE 'tenant\\_pools\\_%')
            + (SELECT count(*) FROM pg_class r JOIN pg_namespace n ON n.oid = r.relnamespace
               WHERE n.nspname = $1 AND r.relname = 'tenant_pools_changes') AS n`,
      [`tenant_${id}`],
    )
    return Number(rows[0]?.n)
  })
}

/** The tenant's catalog row, as stored (every column: the move phases included). */
export function catalogRow(id: string): Promise<Record<string, unknown> | undefined> {
  return onServer(databaseUrl(), async (c) => {
    const { rows } = await c.query('SELECT * FROM tenants WHERE id = $1', [id])
    return rows[0]
  })
}

/** What is left of the tenant: its catalog row, its copies, and fences per cluster. */
export interface TenantState {
  catalog: Record<string, unknown> | undefined
  copies: Record<string, Fingerprint | undefined>
  fences: Record<string, number>
}

export async function stateOf(id: string): Promise<TenantState> {
  const clusters = Object.keys(clusterUrls)
  const copies: TenantState['copies'] = {}
  const fences: TenantState['fences'] = {}
  for (const cluster of clusters) {
    copies[cluster] = await fingerprint(cluster, id)
    fences[cluster] = await fencesOn(cluster, id)
  }
  return { catalog: await catalogRow(id), copies, fences }
}

/**
 * What is wrong with a tenant that should be settled with rows `expected`: empty when its rows are
 * intact on exactly one cluster, the catalog names that cluster with no move under way, and no
 * fence is left on either cluster.
 */
export function unsettled(state: TenantState, expected: Fingerprint): string[] {
  const wrong: string[] = []
  const placed = state.catalog?.cluster
  if (state.catalog?.moving_to != null) wrong.push(`catalog: moving_to ${state.catalog.moving_to}`)
  if (state.catalog?.old_copy_on != null) wrong.push(`catalog: old_copy_on ${state.catalog.old_copy_on}`)
  for (const [cluster, copy] of Object.entries(state.copies)) {
    if (cluster === placed) {
      if (copy === undefined) wrong.push(`no schema on ${cluster}, where the catalog places the tenant`)
      else if (copy.orders !== expected.orders || copy.lines !== expected.lines)
        wrong.push(`rows on ${cluster} differ: ${JSON.stringify(copy)} vs ${JSON.stringify(expected)}`)
    } else if (copy !== undefined) wrong.push(`a copy left on ${cluster}, not the catalog's ${placed}`)
  }
  for (const [cluster, n] of Object.entries(state.fences)) {
    if (n > 0) wrong.push(`fence left on ${cluster} (${n} objects)`)
  }
  return wrong
}

/** One answer of moveTenant: its report, or what it threw. */
export type Answer =
  | { ok: true; report: MoveReport }
  | { ok: false; status?: number; code?: string; message: string }

export async function answerOf(move: Promise<MoveReport>): Promise<Answer> {
  try {
    return { ok: true, report: await move }
  } catch (err) {
    const e = err as { status?: number; code?: string; message?: string }
    return { ok: false, status: e.status, code: e.code, message: String(e.message) }
  }
}

/**
 * Whether `answer` to a move to `to` told the truth, the tenant having started on `from` and ended on
 * `placed`: a 200 names where the tenant is, a 409 is a refusal (the final state shows it changed
 * nothing), a MOVE_FAILED says where the tenant stayed.
 */
export function untrue(answer: Answer, from: string, to: string, placed: unknown): string | undefined {
  if (answer.ok) {
    const r = answer.report
    if (r.to !== placed) return `200 says it is on ${r.to}, the catalog says ${placed}`
    if (r.outcome !== 'rolled-back' && r.from !== from) return `200 says it came from ${r.from}, not ${from}`
    return undefined
  }
  if (answer.status === 409 && (answer.code === 'MOVE_IN_PROGRESS' || answer.code === 'ALREADY_THERE')) {
    return answer.code === 'ALREADY_THERE' && placed !== to ? `ALREADY_THERE, but on ${placed}` : undefined
  }
  if (answer.status === 503 && answer.code === 'MOVE_FAILED') {
    const stays = /stays on cluster (\S+)/.exec(answer.message)?.[1]
    if (stays !== undefined && stays !== placed) return `503 says it stays on ${stays}, it is on ${placed}`
    return undefined
  }
  return `unexpected answer ${answer.status} ${answer.code}: ${answer.message}`
}
