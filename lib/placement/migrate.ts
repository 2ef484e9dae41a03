// Applies versioned migrations to one schema, once, even when several callers race.
import type { ClientBase } from 'pg'
import { quoteIdent } from '../tenancy/tenant-id'

/**
 * One migration: a `version` (applied once per schema, in the order given) and its SQL, run with
 * the schema as search_path.
 *
 * @example
 * const migrations: Migration[] = [{ version: '0001_notes', sql: 'CREATE TABLE notes (id serial PRIMARY KEY)' }]
 */
export interface Migration {
  version: string
  sql: string
}

/**
 * Runs the migrations of `schema` that are not applied yet, in one transaction, under an advisory
 * lock keyed by the schema: a second caller waits, then finds nothing left to do. Returns the
 * versions it applied. The client must not be in a transaction.
 *
 * @example
 * const applied = await pools.master.withClient((client) =>
 *   migrate(client, pools.schemaOf('acme'), [{ version: '0001_notes', sql: 'CREATE TABLE notes (body text)' }]),
 * )
 */
export async function migrate(
  client: ClientBase,
  schema: string,
  migrations: Migration[],
): Promise<string[]> {
  const s = quoteIdent(schema)
  await client.query('BEGIN')
  try {
    // A migration may outlast the statement timeout meant for API calls; this transaction only.
    await client.query(`SELECT set_config('statement_timeout', '0', true)`)
    // …but it must not queue forever behind API traffic's locks: fail, and be retried later.
    await client.query(`SELECT set_config('lock_timeout', '30s', true)`)
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`tenant-pools:migrate:${schema}`])
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${s}`)
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${s}.schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`,
    )
    const { rows } = await client.query<{ version: string }>(`SELECT version FROM ${s}.schema_migrations`)
    const done = new Set(rows.map((r) => r.version))
    const applied: string[] = []
    // SET LOCAL ends with the transaction: the connection goes back to the pool unchanged.
    await client.query(`SELECT set_config('search_path', $1, true)`, [s])
    for (const m of migrations) {
      if (done.has(m.version)) continue
      await client.query(m.sql)
      await client.query(`INSERT INTO ${s}.schema_migrations (version) VALUES ($1)`, [m.version])
      applied.push(m.version)
    }
    await client.query('COMMIT')
    return applied
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  }
}
