// The copy of a moving tenant's schema from its source cluster to its target, in phases:
// 1. prepareTarget: the migrations the source has, without foreign keys (the copy fills tables in
//    any order, and a catch-up pass replaces rows a parent at a time);
// 2. bulkCopy: every table's rows from one snapshot (COPY, streamed), checked by a count and a
//    checksum against that snapshot, while writes go on;
// 3. catchUp: the rows the change log (change-log.ts) names, again from a later snapshot, as often
//    as needed; the last pass runs behind the fence, when nothing changes any more;
// 4. finishCopy: sequences, each table's count and the caught-up rows' checksum compared on both
//    sides (the bulk copy was checked whole), the foreign keys back (NOT VALID: the rows are the
//    source's, which held them), validated after the flip.
import { pipeline } from 'node:stream/promises'
import { type ClientBase, escapeIdentifier } from 'pg'
import { from as copyFrom, to as copyTo } from 'pg-copy-streams'
import { CHANGES, primaryKeyOf, rowTablesInLoadOrder } from '../../lib'
import { tenantMigrations } from '../../migrations'
import { migrateTenant } from './provision'

/** Rows copied, per table. */
export type CopiedTables = Array<{ name: string; rows: number }>

/** Called as the copy goes: tests cut it short at each point. */
export interface CopyHooks {
  /** After each table's rows are copied. */
  tableCopied?: (name: string) => void | Promise<void>
  /** Once every table matches, just before the foreign keys come back. */
  verified?: () => void | Promise<void>
}

/** A foreign key of the target, dropped for the copy. */
export interface ForeignKey {
  table: string
  name: string
  definition: string
  /**
   * Added back checked at once, not NOT VALID: before 18, PostgreSQL refuses NOT VALID on a
   * partitioned table, and a later VALIDATE of one that references a partitioned table leaves its
   * parts, one per partition, marked unchecked.
   */
  validNow: boolean
}

/** What the phases share: the tables in load order, their columns and keys, the target's foreign keys. */
export interface CopyPlan {
  schema: string
  tables: string[]
  columns: Map<string, string>
  keys: Map<string, Array<{ name: string; type: string }>>
  foreignKeys: ForeignKey[]
  /** Whether the source's changes are captured (catch-up passes apply). */
  captured: boolean
  /** Every key a catch-up pass copied again, per table: the last check compares those rows. */
  touched: Map<string, Map<string, unknown>>
}

// The same text for the same row on both servers, whatever their settings; and no API statement
// timeout on a copy that may take longer.
const SETTINGS = [
  `SET LOCAL TimeZone = 'UTC'`,
  `SET LOCAL DateStyle = 'ISO, MDY'`,
  'SET LOCAL extra_float_digits = 3',
  'SET LOCAL statement_timeout = 0',
]

async function begin(client: ClientBase, mode = ''): Promise<void> {
  await client.query(`BEGIN ${mode}`)
  for (const q of SETTINGS) await client.query(q)
}

/**
 * Makes the schema on `dst` at the source's migration version, its foreign keys dropped. The caller
 * holds the tenant's move lock with the move claimed: whatever `dst` held of the schema is a
 * leftover of that move (the tenant does not live there), and it is dropped.
 */
export async function prepareTarget(
  src: ClientBase,
  dst: ClientBase,
  schema: string,
  captured: boolean,
): Promise<CopyPlan> {
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
  // The migrations table is left out (migrate() filled it), and so is the change log. A partitioned
  // table's rows are copied partition by partition (COPY refuses the partitioned table itself).
  const tables = await rowTablesInLoadOrder(src, schema, ['schema_migrations', CHANGES])
  const columns = new Map<string, string>()
  const keys = new Map<string, Array<{ name: string; type: string }>>()
  for (const table of tables) {
    columns.set(table, await copiedColumns(src, schema, table))
    keys.set(table, await primaryKeyOf(src, schema, table))
  }
  // A partition's copies of its parent's foreign keys (and those cloned for each partition of a
  // referenced partitioned table) go and come back with the parent's.
  const { rows: foreignKeys } = await dst.query<ForeignKey>(
    `SELECT r.relname AS table, k.conname AS name, pg_get_constraintdef(k.oid) AS definition,
            'p' IN (r.relkind, f.relkind) AND current_setting('server_version_num')::int < 180000 AS "validNow"
     FROM pg_constraint k JOIN pg_class r ON r.oid = k.conrelid JOIN pg_namespace n ON n.oid = r.relnamespace
     JOIN pg_class f ON f.oid = k.confrelid
     WHERE n.nspname = $1 AND k.contype = 'f' AND k.conparentid = 0`,
    [schema],
  )
  for (const fk of foreignKeys) {
    await dst.query(
      `ALTER TABLE ${s}.${escapeIdentifier(fk.table)} DROP CONSTRAINT ${escapeIdentifier(fk.name)}`,
    )
  }
  return { schema, tables, columns, keys, foreignKeys, captured, touched: new Map() }
}

/**
 * Copies every table's rows from one snapshot of the source, in one transaction on the target. The
 * log entries that snapshot already holds are then removed: what is left is what changed since.
 */
export async function bulkCopy(
  src: ClientBase,
  dst: ClientBase,
  plan: CopyPlan,
  hooks: CopyHooks = {},
): Promise<CopiedTables> {
  const s = escapeIdentifier(plan.schema)
  await begin(src, 'ISOLATION LEVEL REPEATABLE READ READ ONLY')
  await begin(dst)
  const seen = plan.captured ? await loggedIds(src, plan.schema) : []
  const report: CopiedTables = []
  for (const table of plan.tables) {
    const t = `${s}.${escapeIdentifier(table)}`
    const columns = plan.columns.get(table)
    await pipeline(
      src.query(copyTo(`COPY ${t} (${columns}) TO STDOUT`)),
      dst.query(copyFrom(`COPY ${t} (${columns}) FROM STDIN`)),
    )
    // The whole copy checked, from the same snapshot, while writes go on: the last check, behind
    // the fence, then only needs the rows caught up since and the counts.
    const [a, b] = await Promise.all([checksum(src, t), checksum(dst, t)])
    if (a.n !== b.n || a.sum !== b.sum) {
      throw new Error(`table ${table}: ${b.n} rows copied of ${a.n}, or their checksums differ`)
    }
    report.push({ name: table, rows: Number(a.n) })
    await hooks.tableCopied?.(table)
  }
  await dst.query('COMMIT')
  await src.query('COMMIT')
  await forget(src, plan.schema, seen)
  return report
}

/**
 * One catch-up pass: the rows the log names, as one snapshot of the source has them, replace the
 * target's (deleted there when the source no longer has them). Returns how many log entries it
 * applied; 0 when nothing changed since the last pass.
 */
export async function catchUp(src: ClientBase, dst: ClientBase, plan: CopyPlan): Promise<number> {
  if (!plan.captured) return 0
  const s = escapeIdentifier(plan.schema)
  const log = `${s}.${escapeIdentifier(CHANGES)}`
  await begin(src, 'ISOLATION LEVEL REPEATABLE READ READ ONLY')
  let ids: string[]
  const changed = new Map<string, { keys: unknown[]; rows: unknown[] }>()
  try {
    const { rows } = await src.query<{ id: string; tbl: string; key: unknown }>(
      `SELECT id, tbl, key FROM ${log}`,
    )
    ids = rows.map((r) => r.id)
    const byTable = new Map<string, Map<string, unknown>>()
    for (const r of rows) {
      const keys = byTable.get(r.tbl) ?? new Map<string, unknown>()
      keys.set(JSON.stringify(r.key), r.key)
      byTable.set(r.tbl, keys)
    }
    for (const [table, keys] of byTable) {
      if (!plan.keys.has(table)) throw new Error(`the change log names table ${table}, which is not copied`)
      const list = [...keys.values()]
      const touched = plan.touched.get(table) ?? new Map<string, unknown>()
      for (const [text, key] of keys) touched.set(text, key)
      plan.touched.set(table, touched)
      const { rows: current } = await src.query<{ row: unknown }>(
        `SELECT to_jsonb(t) AS row FROM ${s}.${escapeIdentifier(table)} AS t WHERE ${keyMatch(plan, table, 't')}`,
        [JSON.stringify(list)],
      )
      changed.set(table, { keys: list, rows: current.map((c) => c.row) })
    }
    await src.query('COMMIT')
  } catch (err) {
    await src.query('ROLLBACK').catch(() => {})
    throw err
  }
  if (ids.length === 0) return 0
  await begin(dst)
  for (const table of plan.tables) {
    const change = changed.get(table)
    if (!change) continue
    const t = `${s}.${escapeIdentifier(table)}`
    await dst.query(`DELETE FROM ${t} AS t WHERE ${keyMatch(plan, table, 't')}`, [
      JSON.stringify(change.keys),
    ])
    if (change.rows.length > 0) {
      const columns = plan.columns.get(table)
      await dst.query(
        `INSERT INTO ${t} (${columns}) OVERRIDING SYSTEM VALUE
         SELECT ${columns} FROM jsonb_populate_recordset(NULL::${t}, $1::jsonb)`,
        [JSON.stringify(change.rows)],
      )
    }
  }
  await dst.query('COMMIT')
  await forget(src, plan.schema, ids)
  return ids.length
}

/**
 * The last pass, the source fenced: the catch-up, every sequence's position, a count and checksum
 * of every table compared on both sides, then the foreign keys back. Throws if anything differs.
 */
export async function finishCopy(
  src: ClientBase,
  dst: ClientBase,
  plan: CopyPlan,
  hooks: CopyHooks = {},
): Promise<void> {
  await catchUp(src, dst, plan)
  const s = escapeIdentifier(plan.schema)
  await begin(src, 'ISOLATION LEVEL REPEATABLE READ READ ONLY')
  await begin(dst)
  try {
    // The change log's own identity sequence is the mover's, not the tenant's.
    const { rows: sequences } = await src.query<{ name: string }>(
      `SELECT q.relname AS name FROM pg_class q JOIN pg_namespace n ON n.oid = q.relnamespace
       WHERE n.nspname = $1 AND q.relkind = 'S' AND NOT EXISTS (
         SELECT 1 FROM pg_depend d JOIN pg_class t ON t.oid = d.refobjid
         WHERE d.objid = q.oid AND d.deptype IN ('a', 'i') AND t.relname = $2)`,
      [plan.schema, CHANGES],
    )
    for (const { name } of sequences) {
      const q = `${s}.${escapeIdentifier(name)}`
      const { rows } = await src.query<{ last_value: string; is_called: boolean }>(
        `SELECT last_value, is_called FROM ${q}`,
      )
      const at = rows[0]
      if (at) await dst.query('SELECT setval($1::regclass, $2, $3)', [q, at.last_value, at.is_called])
    }
    // The bulk copy was checked whole; since, only the rows the log named changed: those, and every
    // table's count (a row the log missed would show there), are compared now.
    for (const table of plan.tables) {
      const t = `${s}.${escapeIdentifier(table)}`
      const counted = (c: ClientBase) => c.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${t}`)
      const [a, b] = await Promise.all([counted(src), counted(dst)])
      if (a.rows[0]?.n !== b.rows[0]?.n) {
        throw new Error(`table ${table}: ${b.rows[0]?.n} rows on the target, ${a.rows[0]?.n} on the source`)
      }
      const keys = [...(plan.touched.get(table)?.values() ?? [])]
      if (keys.length === 0) continue
      const where = keyMatch(plan, table, 't')
      const params = [JSON.stringify(keys)]
      const [x, y] = await Promise.all([checksum(src, t, where, params), checksum(dst, t, where, params)])
      if (x.n !== y.n || x.sum !== y.sum) {
        throw new Error(`table ${table}: the rows caught up differ between the source and the target`)
      }
    }
    await hooks.verified?.()
    for (const fk of plan.foreignKeys) {
      await dst.query(
        `ALTER TABLE ${s}.${escapeIdentifier(fk.table)} ADD CONSTRAINT ${escapeIdentifier(fk.name)} ${fk.definition}${fk.validNow ? '' : ' NOT VALID'}`,
      )
    }
    await dst.query('COMMIT')
    await src.query('COMMIT')
  } catch (err) {
    await dst.query('ROLLBACK').catch(() => {})
    await src.query('ROLLBACK').catch(() => {})
    throw err
  }
}

/** After the flip: the foreign keys, back NOT VALID, are checked (writes go on meanwhile). */
export async function validateForeignKeys(dst: ClientBase, plan: CopyPlan): Promise<void> {
  const s = escapeIdentifier(plan.schema)
  for (const fk of plan.foreignKeys) {
    await dst.query(
      `ALTER TABLE ${s}.${escapeIdentifier(fk.table)} VALIDATE CONSTRAINT ${escapeIdentifier(fk.name)}`,
    )
  }
}

// The ids of the log entries the current snapshot holds.
async function loggedIds(src: ClientBase, schema: string): Promise<string[]> {
  const log = `${escapeIdentifier(schema)}.${escapeIdentifier(CHANGES)}`
  const { rows } = await src.query<{ ids: string[] }>(
    `SELECT coalesce(array_agg(id), '{}') AS ids FROM ${log}`,
  )
  return rows[0]?.ids ?? []
}

// Removes log entries once applied. By id: entries of transactions that committed later (with lower
// ids) stay, for the next pass.
async function forget(src: ClientBase, schema: string, ids: string[]): Promise<void> {
  if (ids.length === 0) return
  const log = `${escapeIdentifier(schema)}.${escapeIdentifier(CHANGES)}`
  await src.query(`DELETE FROM ${log} WHERE id = ANY ($1::bigint[])`, [ids])
}

// `alias`'s primary key is one of the keys in $1 (a JSON array of objects, one per key).
function keyMatch(plan: CopyPlan, table: string, alias: string): string {
  const key = plan.keys.get(table) ?? []
  const names = key.map((k) => escapeIdentifier(k.name))
  const record = key.map((k) => `${escapeIdentifier(k.name)} ${k.type}`).join(', ')
  return `(${names.map((n) => `${alias}.${n}`).join(', ')}) IN (SELECT ${names.join(', ')} FROM jsonb_to_recordset($1::jsonb) AS k (${record}))`
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

// Order-free and cheap (no sort): a count and a sum of row hashes, of every row or those `where`.
async function checksum(
  client: ClientBase,
  table: string,
  where = 'true',
  params: unknown[] = [],
): Promise<{ n: string; sum: string }> {
  const { rows } = await client.query<{ n: string; sum: string }>(
    `SELECT count(*)::text AS n, coalesce(sum(hashtextextended(t::text, 0)), 0)::text AS sum FROM ${table} AS t
     WHERE ${where}`,
    params,
  )
  return rows[0] as { n: string; sum: string }
}
