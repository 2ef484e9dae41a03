// The fence of a moving tenant: a statement-level trigger on every table of its schema that refuses
// any write with SQLSTATE TPM01 before it changes a row. It lives in the database, so it holds for
// every environment, however stale its catalog cache: after a move, the old copy cannot take a write
// from anyone, and an acknowledged write can only have landed in the copy that is moved.
import type { ClientBase } from 'pg'
import { TENANT_FENCED } from '../sqlstate'
import { quoteIdent } from './tenant-id'

const FENCE = 'tenant_pools_fence'

/**
 * Fences every table of `schema`. Creating the triggers waits for writes in flight to end (their
 * locks conflict), so once this returns no write can commit in the schema. Runs in its own
 * transaction; `lockTimeoutMs` bounds the wait behind long writers (the move then fails, unfenced).
 */
export async function fence(client: ClientBase, schema: string, lockTimeoutMs = 10_000): Promise<void> {
  const s = quoteIdent(schema)
  await client.query('BEGIN')
  try {
    await client.query(`SELECT set_config('lock_timeout', $1, true)`, [`${lockTimeoutMs}ms`])
    await client.query(
      `CREATE OR REPLACE FUNCTION ${s}.${FENCE}() RETURNS trigger LANGUAGE plpgsql AS $fence$
       BEGIN
         RAISE EXCEPTION 'tenant schema % is being moved: writes are refused', TG_TABLE_SCHEMA
           USING ERRCODE = '${TENANT_FENCED}';
       END
       $fence$`,
    )
    for (const table of await tablesOf(client, schema)) {
      const t = `${s}.${quoteIdent(table)}`
      await client.query(`DROP TRIGGER IF EXISTS ${FENCE} ON ${t}`)
      await client.query(
        `CREATE TRIGGER ${FENCE} BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON ${t}
         FOR EACH STATEMENT EXECUTE FUNCTION ${s}.${FENCE}()`,
      )
    }
    await client.query('COMMIT')
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  }
}

/** Takes the fence down (a move that failed part way): the schema takes writes again. */
export async function unfence(client: ClientBase, schema: string): Promise<void> {
  const s = quoteIdent(schema)
  await client.query('BEGIN')
  try {
    for (const table of await tablesOf(client, schema)) {
      await client.query(`DROP TRIGGER IF EXISTS ${FENCE} ON ${s}.${quoteIdent(table)}`)
    }
    await client.query(`DROP FUNCTION IF EXISTS ${s}.${FENCE}()`)
    await client.query('COMMIT')
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  }
}

/** The ordinary tables of `schema`, by name. */
export async function tablesOf(client: ClientBase, schema: string): Promise<string[]> {
  const { rows } = await client.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY c.relname`,
    [schema],
  )
  return rows.map((r) => r.name)
}
