// The copy of a moving tenant's schema from its source cluster to its target: the migrations the
// source has, then every table's rows (COPY, streamed) and every sequence's position, verified by a
// count and a checksum per table before the target commits.
import { pipeline } from 'node:stream/promises'
import { type ClientBase, escapeIdentifier } from 'pg'
import { from as copyFrom, to as copyTo } from 'pg-copy-streams'
import { tenantMigrations } from '../../migrations'
import { migrateTenant } from './provision'

/** Rows copied, per table. */
export type CopiedTables = Array<{ name: string; rows: number }>

/** Called as the copy goes: tests cut it short at each point. */
export interface CopyHooks {
  /** After each table's rows are copied and verified. */
  tableCopied?: (name: string) => void | Promise<void>
  /** Once every table matches, just before the target commits. */
  verified?: () => void | Promise<void>
}

/**
 * Copies `schema` from `src` to `dst` in one transaction on each side: the migrations the source
 * has, then every table's rows and every sequence's position, then a count and checksum per table
 * compared on both sides. Nothing is committed on `dst` unless all of it matches. The caller must
 * hold the tenant's move lock with the move claimed: whatever `dst` holds of the schema then is a
 * leftover of that move (the tenant does not live there), and it is dropped.
 *
 * If it throws, its connections must be destroyed, not given back: a failed COPY TO stream leaves
 * its connection unread, and a ROLLBACK sent on it would never be answered. The registry's
 * withClient destroys them; the server then rolls both transactions back.
 */
export async function copySchema(
  src: ClientBase,
  dst: ClientBase,
  schema: string,
  hooks: CopyHooks = {},
): Promise<CopiedTables> {
  const s = escapeIdentifier(schema)
  const { rows: versions } = await src.query<{ version: string }>(
    `SELECT version FROM ${s}.schema_migrations`,
  )
  const known = new Set(tenantMigrations.map((m) => m.version))
  const unknown = versions.filter((v) => !known.has(v.version))
  if (unknown.length > 0)
    throw new Error(`source schema has migrations this code does not know: ${unknown.map((v) => v.version)}`)
  // Bounded: a leftover still locked by a mover the server has not yet given up on fails the move.
  await dst.query(`SELECT set_config('lock_timeout', '10s', false)`)
  await dst.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`)
  const has = new Set(versions.map((v) => v.version))
  // Tenant traffic's rights come with it: the copy is served as the original was.
  await migrateTenant(
    dst,
    schema,
    tenantMigrations.filter((m) => has.has(m.version)),
  )
  // The same text for the same row on both servers, whatever their settings; and no API statement
  // timeout on a copy that may take longer.
  const settings = [
    `SET LOCAL TimeZone = 'UTC'`,
    `SET LOCAL DateStyle = 'ISO, MDY'`,
    'SET LOCAL extra_float_digits = 3',
    'SET LOCAL statement_timeout = 0',
  ]
  await src.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY')
  await dst.query('BEGIN')
  for (const q of settings) {
    await src.query(q)
    await dst.query(q)
  }
  const tables = await tablesInLoadOrder(src, schema)
  const report: CopiedTables = []
  for (const table of tables) {
    const t = `${s}.${escapeIdentifier(table)}`
    const columns = await copiedColumns(src, schema, table)
    await pipeline(
      src.query(copyTo(`COPY ${t} (${columns}) TO STDOUT`)),
      dst.query(copyFrom(`COPY ${t} (${columns}) FROM STDIN`)),
    )
    const [a, b] = await Promise.all([checksum(src, t), checksum(dst, t)])
    if (a.n !== b.n || a.sum !== b.sum) {
      throw new Error(`table ${table}: ${b.n} rows copied of ${a.n}, or their checksums differ`)
    }
    report.push({ name: table, rows: Number(a.n) })
    await hooks.tableCopied?.(table)
  }
  const { rows: sequences } = await src.query<{ name: string }>(
    `SELECT sequencename AS name FROM pg_sequences WHERE schemaname = $1`,
    [schema],
  )
  for (const { name } of sequences) {
    const q = `${s}.${escapeIdentifier(name)}`
    const { rows } = await src.query<{ last_value: string; is_called: boolean }>(
      `SELECT last_value, is_called FROM ${q}`,
    )
    const at = rows[0]
    if (at) await dst.query('SELECT setval($1::regclass, $2, $3)', [q, at.last_value, at.is_called])
  }
  await hooks.verified?.()
  await dst.query('COMMIT')
  await src.query('COMMIT')
  return report
}

// Tables referenced by a foreign key come before those that reference them. The migrations table
// is left out: migrate() filled it on the target.
async function tablesInLoadOrder(client: ClientBase, schema: string): Promise<string[]> {
  const { rows } = await client.query<{ name: string; refs: string[] }>(
    `SELECT c.relname AS name,
            coalesce(array_agg(r.relname::text) FILTER (WHERE r.relname IS NOT NULL AND r.oid <> c.oid), '{}'::text[]) AS refs
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     LEFT JOIN pg_constraint k ON k.conrelid = c.oid AND k.contype = 'f'
     LEFT JOIN pg_class r ON r.oid = k.confrelid
     WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND c.relname <> 'schema_migrations'
     GROUP BY c.relname ORDER BY c.relname`,
    [schema],
  )
  const order: string[] = []
  const pending = new Map(rows.map((r) => [r.name, r.refs]))
  while (pending.size > 0) {
    const ready = [...pending].filter(([, refs]) => refs.every((r) => !pending.has(r)))
    if (ready.length === 0) throw new Error(`foreign keys form a cycle among ${[...pending.keys()]}`)
    for (const [name] of ready) {
      order.push(name)
      pending.delete(name)
    }
  }
  return order
}

// Stored columns, in order (generated ones are computed again on the target).
async function copiedColumns(client: ClientBase, schema: string, table: string): Promise<string> {
  const { rows } = await client.query<{ name: string }>(
    `SELECT a.attname AS name FROM pg_attribute a
     JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
     ORDER BY a.attnum`,
    [schema, table],
  )
  return rows.map((r) => escapeIdentifier(r.name)).join(', ')
}

async function checksum(client: ClientBase, table: string): Promise<{ n: string; sum: string }> {
  const { rows } = await client.query<{ n: string; sum: string }>(
    `SELECT count(*)::text AS n, coalesce(md5(string_agg(md5(t::text), '' ORDER BY md5(t::text))), '') AS sum
     FROM ${table} AS t`,
  )
  return rows[0] as { n: string; sum: string }
}
